// hubbub's JavaScript client: ES modules (this one, changes.js and outbox.js), no build
// step, for browsers and Node >= 20. The wire contract is docs/PROTOCOL.md; the types are hubbub.d.ts.
//
// What it guarantees on top of the protocol:
// - it reconnects with exponential backoff and full jitter, asks for a fresh token before
//   every attempt, re-joins the conversations it joined and syncs each from the last
//   version it delivered, so the app sees every change exactly once, in version order;
// - sends go through an outbound queue: a send waits out RATE_LIMITED and survives a
//   disconnect, retried with the same client_message_id (so never duplicated), and each
//   send's promise settles exactly once.

import { CHANGE_TYPES, Changes } from "./changes.js";
import { Outbox } from "./outbox.js";

export { CHANGE_TYPES };

const CHANGES = new Set(CHANGE_TYPES);
// After a 1001 the first delay is drawn under baseMs · 2^3 (4 s by default).
const SHUTDOWN_STEP = 3;

/** A refused or failed request: the server's `Error` frame (§4), or a local condition. */
export class HubbubError extends Error {
  constructor(code, message, frame = null) {
    super(message || code);
    this.name = "HubbubError";
    this.code = code;
    this.frame = frame;
    this.retryAfterMs = frame && typeof frame.retry_after_ms === "number" ? frame.retry_after_ms : null;
  }
}

/**
 * Full-jitter exponential backoff: a uniform delay in [0, min(maxMs, baseMs * 2^attempt)),
 * so that clients dropped together do not come back together.
 */
export function backoffDelay(attempt, baseMs = 500, maxMs = 30_000, random = Math.random) {
  return Math.floor(random() * Math.min(maxMs, baseMs * 2 ** attempt));
}

/** The close code a failed connection attempt stands for: 4001 when the token was refused. */
function closeCode(error) {
  if (error instanceof HubbubError && error.code === "UNAUTHORIZED") return 4001;
  return error && error.frame && typeof error.frame.code === "number" ? error.frame.code : 0;
}

export class HubbubClient {
  /** @param {import("./hubbub.js").ClientOptions} options */
  constructor(options) {
    if (!options || typeof options.url !== "string") throw new TypeError("options.url: the server's URL is required");
    if (!options.token && !options.getToken) throw new TypeError("options.token or options.getToken is required");
    const base = options.url.replace(/\/+$/, "").replace(/\/ws$/, "");
    this.httpUrl = base.replace(/^ws(s?):/, "http$1:");
    this.wsUrl = this.httpUrl.replace(/^http(s?):/, "ws$1:") + "/ws";
    this.token = options.token || null;
    this.getToken = options.getToken || null;
    this.useTicket = Boolean(options.useTicket);
    this.WebSocketImpl = options.WebSocket || globalThis.WebSocket;
    if (!this.WebSocketImpl) throw new TypeError("options.WebSocket: no global WebSocket here (Node 20: pass the `ws` package's)");
    this.fetchImpl = options.fetch || globalThis.fetch.bind(globalThis);
    this.backoff = { baseMs: 500, maxMs: 30_000, ...options.backoff };
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.state = "idle"; // idle | connecting | open | closed
    this.connected = null; // the last Connected frame
    this.link = null;
    this.stopped = true;
    this.generation = 0;
    this.listeners = new Map();
    this.pending = new Map(); // request_id → {resolve, reject, timer}
    this.nextRequest = 1;
    this.changes = new Changes(this); // the joined conversations, each in version order
    this.sends = new Outbox(this, (attempt) => backoffDelay(attempt, this.backoff.baseMs, this.backoff.maxMs));
    this.wake = null;
  }

  // -- events ---------------------------------------------------------------------------

  /** Subscribe to a server message type, or to "change", "MessageSynced", "state",
   * "outbox", "error". Returns a function that unsubscribes. */
  on(type, handler) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(handler);
    return () => this.listeners.get(type).delete(handler);
  }

  emit(type, detail) {
    for (const handler of [...(this.listeners.get(type) || [])]) {
      try {
        handler(detail);
      } catch (error) {
        if (type !== "error") this.emit("error", error);
      }
    }
  }

  // -- the connection -------------------------------------------------------------------

  get isOpen() {
    return this.state === "open" && this.link !== null;
  }

  /** Connect, and keep reconnecting until `close()`. Resolves on the first `Connected`. */
  connect() {
    if (!this.stopped) return this.firstConnect;
    this.stopped = false;
    this.generation += 1; // so that a loop from before a close() ends
    this.firstConnect = new Promise((resolve, reject) => {
      this.onFirst = { resolve, reject };
    });
    this.run(this.generation);
    return this.firstConnect;
  }

  /** Stop for good: the socket is closed and every unsettled send is rejected (CLOSED). */
  close() {
    this.stopped = true;
    if (this.wake) this.wake();
    if (this.link) this.link.ws.close(1000, "bye");
    const error = new HubbubError("CLOSED", "the client was closed");
    this.sends.rejectAll(error);
    if (this.onFirst) this.onFirst.reject(error);
    this.onFirst = null;
    this.setState("closed", 1000);
  }

  setToken(token) {
    this.token = token;
  }

  setState(state, code = null) {
    if (this.state === state) return;
    this.state = state;
    this.emit("state", { state, code });
  }

  async run(generation) {
    let attempt = 0;
    const current = () => !this.stopped && this.generation === generation;
    while (current()) {
      let code = 0;
      try {
        this.setState("connecting");
        const link = await this.dial();
        await link.connected;
        attempt = 0;
        code = (await link.closed).code;
      } catch (error) {
        code = closeCode(error);
      }
      if (!current()) return;
      this.setState("closed", code);
      // 4001: the token expired; without a way to get a new one, retrying is pointless.
      if (code === 4001 && !this.getToken) {
        this.stopped = true;
        if (this.onFirst) this.onFirst.reject(new HubbubError("UNAUTHORIZED", "the token was refused"));
        this.onFirst = null;
        return;
      }
      // 1001, a server shutting down: spread over a few seconds at least (§1), no stampede.
      const step = code === 1001 ? Math.max(attempt, SHUTDOWN_STEP) : attempt;
      attempt += 1;
      // A fresh token is worth trying at once, but only right after a connection that worked.
      const delay = code === 4001 && step === 0 ? 0 : backoffDelay(step, this.backoff.baseMs, this.backoff.maxMs);
      await new Promise((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, delay);
      });
      this.wake = null;
    }
  }

  /** One connection attempt: a fresh token, a ticket if asked for, the socket. */
  async dial() {
    if (this.getToken) this.token = await this.getToken();
    let query = `token=${encodeURIComponent(this.token)}`;
    if (this.useTicket) {
      const ticket = await this.http("POST", "/api/v1/ws-tickets");
      query = `ticket=${encodeURIComponent(ticket.ticket)}`;
    }
    if (this.stopped) throw new HubbubError("CLOSED", "the client was closed");
    const ws = new this.WebSocketImpl(`${this.wsUrl}?${query}`);
    const link = { ws };
    this.link = link;
    link.closed = new Promise((resolve) => {
      ws.onclose = (event) => {
        this.onClose(link);
        resolve({ code: event.code });
      };
    });
    link.connected = new Promise((resolve, reject) => {
      link.onConnected = resolve;
      link.closed.then(({ code }) => reject(new HubbubError("OFFLINE", `closed before Connected (${code})`, { code })));
    });
    link.connected.catch(() => {});
    ws.onerror = () => {};
    ws.onmessage = (event) => this.onFrame(link, event.data);
    return link;
  }

  /** JSON over HTTP with the bearer token (§7). */
  async http(method, path, body) {
    const headers = { Authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await this.fetchImpl(this.httpUrl + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) {
      const error = (data && data.error) || {};
      const code = response.status === 401 ? "UNAUTHORIZED" : error.code || `HTTP_${response.status}`;
      throw new HubbubError(code, error.message || response.statusText, { status: response.status });
    }
    return data;
  }

  onFrame(link, data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    const waiter = frame.request_id !== undefined && this.pending.get(frame.request_id);
    if (waiter) {
      this.pending.delete(frame.request_id);
      clearTimeout(waiter.timer);
      if (frame.type === "Error") waiter.reject(new HubbubError(frame.code, frame.message, frame));
      else waiter.resolve(frame);
      return;
    }
    if (frame.type === "Connected") {
      this.connected = frame;
      this.setState("open");
      link.onConnected(frame);
      if (this.onFirst) this.onFirst.resolve(frame);
      this.onFirst = null;
      this.emit("Connected", frame);
      this.resume();
      return;
    }
    if (CHANGES.has(frame.type)) this.changes.onChange(frame);
    else this.emit(frame.type, frame);
  }

  onClose(link) {
    if (this.link !== link) return;
    this.link = null;
    const error = new HubbubError("OFFLINE", "the connection closed");
    for (const waiter of this.pending.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    this.pending.clear();
  }

  /** After (re)connecting: join again, catch up on each conversation, send what waits. */
  resume() {
    this.sends.pump();
    for (const id of this.changes.ids()) {
      this.rejoin(id).catch((error) => {
        // Refused (removed, banned, gone): no longer joined; otherwise the next resume tries.
        if (error.code === "FORBIDDEN" || error.code === "NOT_FOUND") this.changes.untrack(id);
        this.emit("error", error);
      });
    }
  }

  // -- requests -------------------------------------------------------------------------

  /** Send any client message (§3) and resolve with its direct response (§2). */
  request(type, fields = {}) {
    if (!this.isOpen) return Promise.reject(new HubbubError("OFFLINE", "not connected"));
    const requestId = `r${this.nextRequest++}`;
    const link = this.link;
    return new Promise((resolve, reject) => {
      // No answer in time: the connection is presumed dead; reconnecting settles it.
      const timer = setTimeout(() => link.ws.close(4000, "no answer"), this.requestTimeoutMs);
      this.pending.set(requestId, { resolve, reject, timer });
      link.ws.send(JSON.stringify({ ...fields, type, request_id: requestId }));
    });
  }

  /** A request that waits out RATE_LIMITED: a reconnect's re-joins and syncs come in a burst. */
  async patiently(type, fields) {
    for (;;) {
      try {
        return await this.request(type, fields);
      } catch (error) {
        if (error.code !== "RATE_LIMITED") throw error;
        await new Promise((resolve) => setTimeout(resolve, error.retryAfterMs ?? 1000));
      }
    }
  }

  /** Join (subscribe to) a conversation; it is re-joined and synced after every reconnect.
   * `sinceVersion`: the last version the app already has (default: the current one). */
  async join(conversationId, { sinceVersion } = {}) {
    const added = this.changes.track(conversationId, sinceVersion);
    try {
      return await this.rejoin(conversationId);
    } catch (error) {
      if (added && error.code !== "OFFLINE") this.changes.untrack(conversationId);
      throw error;
    }
  }

  async rejoin(conversationId) {
    const reply = await this.patiently("JoinConversation", { conversation_id: conversationId });
    await this.changes.joined(conversationId, reply.conversation.version);
    return { conversation: reply.conversation, role: reply.role };
  }

  async leave(conversationId) {
    this.changes.untrack(conversationId);
    await this.request("LeaveConversation", { conversation_id: conversationId });
  }

  history(conversationId, { before, limit } = {}) {
    return this.request("FetchHistory", { conversation_id: conversationId, before, limit });
  }

  sync(conversationId, sinceVersion, { limit } = {}) {
    return this.request("SyncMessages", { conversation_id: conversationId, since_version: sinceVersion, limit });
  }

  search(query, options = {}) {
    const { conversationId, limit, mode, cursor } = options;
    return this.request("SearchMessages", { query, conversation_id: conversationId, limit, mode, cursor });
  }

  async edit(messageId, content) {
    return (await this.request("EditMessage", { message_id: messageId, content })).message;
  }

  async delete(messageId) {
    await this.request("DeleteMessage", { message_id: messageId });
  }

  async react(messageId, emoji, { remove = false } = {}) {
    await this.request(remove ? "RemoveReaction" : "AddReaction", { message_id: messageId, emoji });
  }

  async typing(conversationId, isTyping = true) {
    await this.request("Typing", { conversation_id: conversationId, is_typing: isTyping });
  }

  async markRead(conversationId, messageId) {
    await this.request("MarkAsRead", { conversation_id: conversationId, message_id: messageId });
  }

  // -- the outbound queue (outbox.js) ---------------------------------------------------

  /** Queue a message; resolves with the stored message, rejects once if it is refused. */
  send(conversationId, content, options = {}) {
    return this.sends.send(conversationId, content, options);
  }

  /** The sends not settled yet, oldest first. */
  get outbox() {
    return this.sends.entries();
  }
}
