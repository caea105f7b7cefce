// hubbub.d.ts: it compiles, strict, against an app's use of it (types-check.ts), and it
// declares what hubbub.js has, no more and no less.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import * as sdk from "../hubbub.js";

const HERE = join(dirname(fileURLToPath(import.meta.url)), "..");
const DECLARATIONS = readFileSync(join(HERE, "hubbub.d.ts"), "utf8");

test("the declarations compile against an app's use of them", async () => {
  const tsc = join(HERE, "node_modules", ".bin", "tsc");
  const run = await promisify(execFile)(tsc, ["-p", HERE], { cwd: HERE }).catch((error) => error);
  assert.equal(run.code ?? 0, 0, `${run.stdout}${run.stderr}`);
});

test("every export of hubbub.js is declared, and every declared one exists", () => {
  const declared = [...DECLARATIONS.matchAll(/^export declare (?:class|const|function) (\w+)/gm)].map((m) => m[1]);
  assert.deepEqual(declared.sort(), Object.keys(sdk).sort());
});

test("the client's declared methods are the public ones it has", () => {
  const body = DECLARATIONS.slice(DECLARATIONS.indexOf("export declare class HubbubClient"));
  const declared = new Set([...body.matchAll(/^ {2}(?:readonly )?(\w+)[<(:]/gm)].map((m) => m[1]));
  const client = new sdk.HubbubClient({ url: "http://127.0.0.1:1", token: "t", WebSocket: class {} });
  for (const name of declared) assert.ok(name in client, `${name} is declared but missing`);
  const documented = ["on", "connect", "close", "setToken", "http", "request", "send", "join", "leave",
    "history", "sync", "search", "edit", "delete", "react", "typing", "markRead"];
  for (const name of documented) assert.ok(declared.has(name), `${name} is not declared`);
});

test("the published package holds every module of the SDK", () => {
  const { files } = JSON.parse(readFileSync(join(HERE, "package.json"), "utf8"));
  const modules = readdirSync(HERE).filter((name) => name.endsWith(".js") || name.endsWith(".d.ts"));
  for (const name of modules) assert.ok(files.includes(name), `${name} is not in package.json's files`);
});
