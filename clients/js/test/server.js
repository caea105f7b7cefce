// A real hubbub server for the SDK's tests: `hubbub serve` as a child process on a SQLite
// file of its own, restartable on the same port, and HS256 tokens signed with its secret.
//
// HUBBUB_BIN names the command (default: the checkout's .venv/bin/hubbub).

import { spawn } from "node:child_process";
import { createHmac, randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, openSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const BIN = process.env.HUBBUB_BIN || join(ROOT, ".venv", "bin", "hubbub");
// A cold interpreter starts in about a second; the margin is for a loaded machine.
const START_TIMEOUT_MS = 60_000;

function freePort() {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
  });
}

const b64url = (value) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");

/** An HS256 JWT (PROTOCOL.md §1) for `userId`. */
export function mint(secret, userId, name, ttlS = 3600) {
  const now = Math.floor(Date.now() / 1000);
  const head = `${b64url({ alg: "HS256", typ: "JWT" })}.${b64url({ sub: userId, name, iat: now, exp: now + ttlS })}`;
  return `${head}.${createHmac("sha256", secret).update(head).digest("base64url")}`;
}

export class Server {
  constructor(env = {}) {
    this.dir = mkdtempSync(join(tmpdir(), "hubbub-js-"));
    this.secret = randomBytes(32).toString("base64url");
    this.env = env;
    this.port = 0;
    this.child = null;
    this.starts = 0;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  user(name) {
    const id = randomUUID();
    return { id, name, token: mint(this.secret, id, name) };
  }

  async start() {
    if (!this.port) this.port = await freePort();
    this.starts += 1;
    const log = openSync(join(this.dir, `server-${this.starts}.log`), "w");
    this.child = spawn(BIN, ["serve"], {
      cwd: this.dir,
      stdio: ["ignore", log, log],
      env: {
        ...process.env,
        HUBBUB_HOST: "127.0.0.1",
        HUBBUB_PORT: String(this.port),
        HUBBUB_DATABASE_URL: `sqlite:///${join(this.dir, "hubbub.db")}`,
        HUBBUB_JWT_SECRET: this.secret,
        HUBBUB_LOG_LEVEL: "warning",
        HUBBUB_LOG_FORMAT: "text",
        ...this.env,
      },
    });
    const exited = new Promise((done) => this.child.once("exit", (code) => done(code)));
    this.exited = exited;
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      const early = await Promise.race([exited, new Promise((done) => setTimeout(() => done(undefined), 100))]);
      if (early !== undefined) throw new Error(`hubbub exited with ${early}; log in ${this.dir}`);
      try {
        if ((await fetch(`${this.url}/healthz`)).ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`hubbub not healthy in time; log in ${this.dir}`);
    }
  }

  /** SIGTERM, and wait until the process has gone. */
  async stop() {
    if (!this.child) return;
    this.child.kill("SIGTERM");
    await this.exited;
    this.child = null;
  }

  /** REST as `user` (§7). */
  async api(user, method, path, body) {
    const response = await fetch(this.url + path, {
      method,
      headers: { Authorization: `Bearer ${user.token}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json();
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(data)}`);
    return data;
  }

  /** A group of `owner` and `others`, every one of them known to the server. */
  async group(owner, ...others) {
    for (const user of others) await this.api(user, "GET", "/api/v1/users/me");
    return this.api(owner, "POST", "/api/v1/conversations", {
      kind: "group", name: "test", member_ids: others.map((user) => user.id),
    });
  }
}

/** Resolve once `predicate()` holds (polled), or fail after `timeoutMs` with `what`. */
export async function until(predicate, what, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 20));
  }
}
