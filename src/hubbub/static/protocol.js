// The public protocol only: the REST API (PROTOCOL.md §7) and the /ws WebSocket (§1–§4).

// Where hubbub is served: this file is `{base}/static/protocol.js`, so `{base}/` is one
// level up; hubbub under HUBBUB_BASE_PATH=/chat needs nothing else of the page.
export const BASE_URL = new URL("../", import.meta.url);

/** The URL of an absolute protocol path (`/api/v1/…`, `/ws`) under the base. */
export function urlOf(path) {
  return new URL(path.replace(/^\//, ""), BASE_URL);
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** JSON over HTTP with the bearer token (§7). */
export class Api {
  constructor(token) {
    this.token = token;
  }

  async request(method, path, body) {
    const headers = { Authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(urlOf(path), {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) {
      const error = (data && data.error) || {};
      throw new ApiError(response.status, error.code || "HTTP_" + response.status,
                         error.message || response.statusText);
    }
    return data;
  }

  get(path) { return this.request("GET", path); }
  post(path, body) { return this.request("POST", path, body); }
}

/** A failed request: the server's `Error` frame (§4). */
export class ProtocolError extends Error {
  constructor(frame) {
    super(frame.message || frame.code);
    this.code = frame.code;
    this.frame = frame;
  }
}

// §1: after a close clients reconnect after a random delay of up to a few seconds.
const RECONNECT_MIN_MS = 500;
const RECONNECT_SPREAD_MS = 2500;

/**
 * The WebSocket session. `request` sends a client message and resolves with its direct
 * response (§2: exactly one per message, carrying the request_id) or rejects with a
 * ProtocolError; every other frame is dispatched as an event named by its `type`.
 */
export class Socket extends EventTarget {
  constructor(api) {
    super();
    this.api = api;
    this.ws = null;
    this.pending = new Map();
    this.nextId = 1;
    this.stopped = false;
    this.timer = null;
    this.connected = null;
  }

  async open() {
    this.stopped = false;
    const url = await this.url();
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.addEventListener("message", (event) => this.onFrame(event.data));
    ws.addEventListener("close", (event) => this.onClose(ws, event));
    ws.addEventListener("error", () => {});
  }

  /** Prefer a single-use ticket (§1) so the long-lived token stays out of URLs. */
  async url() {
    const ws = urlOf("/ws");
    ws.protocol = ws.protocol === "https:" ? "wss:" : "ws:";
    const base = ws.href;
    try {
      const ticket = await this.api.post("/api/v1/ws-tickets");
      return `${base}?ticket=${encodeURIComponent(ticket.ticket)}`;
    } catch (error) {
      if (error instanceof ApiError && (error.status === 404 || error.status === 405)) {
        return `${base}?token=${encodeURIComponent(this.api.token)}`;
      }
      throw error;
    }
  }

  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, "bye");
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  request(type, fields = {}) {
    if (!this.isOpen) return Promise.reject(new ProtocolError({ code: "OFFLINE", message: "not connected" }));
    const requestId = "c" + this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(requestId, { resolve, reject });
      this.ws.send(JSON.stringify({ type, request_id: requestId, ...fields }));
    });
  }

  /** Fire and forget: the response is awaited but a failure only logged. */
  notify(type, fields = {}) {
    this.request(type, fields).catch((error) => console.debug(type, "refused:", error.code));
  }

  onFrame(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    const waiter = frame.request_id && this.pending.get(frame.request_id);
    if (waiter) {
      this.pending.delete(frame.request_id);
      if (frame.type === "Error") waiter.reject(new ProtocolError(frame));
      else waiter.resolve(frame);
      return;
    }
    if (frame.type === "Connected") this.connected = frame;
    this.dispatchEvent(new CustomEvent(frame.type, { detail: frame }));
    this.dispatchEvent(new CustomEvent("frame", { detail: frame }));
  }

  onClose(ws, event) {
    if (ws !== this.ws) return;
    this.ws = null;
    for (const waiter of this.pending.values()) {
      waiter.reject(new ProtocolError({ code: "OFFLINE", message: "connection closed" }));
    }
    this.pending.clear();
    this.dispatchEvent(new CustomEvent("closed", { detail: { code: event.code } }));
    // 4001: the token expired; reconnecting with it would only be refused.
    if (event.code !== 4001) this.reconnectLater();
  }

  reconnectLater() {
    if (this.stopped) return;
    const delay = RECONNECT_MIN_MS + Math.random() * RECONNECT_SPREAD_MS;
    this.timer = setTimeout(() => {
      this.open().catch((error) => {
        const refused = error instanceof ApiError && error.status === 401;
        this.dispatchEvent(new CustomEvent("closed", { detail: { code: refused ? 4001 : 0 } }));
        if (!refused) this.reconnectLater();
      });
    }, delay);
  }
}
