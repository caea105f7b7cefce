// The outbound queue of hubbub.js: sends leave one at a time, in order, while connected.
// A send keeps its client_message_id across every retry (PROTOCOL.md §2: the server stores
// it once), so waiting out RATE_LIMITED, or resending after an answer lost in a disconnect,
// never duplicates it; each send's promise settles exactly once.

// Refusals a retry can outlive; anything else settles the send as failed.
const RETRYABLE = new Set(["OFFLINE", "RATE_LIMITED", "INTERNAL_ERROR"]);

const newId = () => globalThis.crypto.randomUUID();

export class Outbox {
  /**
   * @param {import("./hubbub.js").HubbubClient} client sends with `request`, tells with `emit`
   * @param {(attempt: number) => number} delayFor the wait before retrying an INTERNAL_ERROR
   */
  constructor(client, delayFor) {
    this.client = client;
    this.delayFor = delayFor;
    this.queue = []; // sends not settled yet, in order
    this.pumping = false;
  }

  send(conversationId, content, options = {}) {
    const clientMessageId = options.clientMessageId || newId();
    const queued = this.queue.find((entry) => entry.clientMessageId === clientMessageId);
    if (queued) return queued.promise;
    const fields = { conversation_id: conversationId, content, client_message_id: clientMessageId };
    if (options.parentId) fields.parent_id = options.parentId;
    if (options.attachments) fields.attachments = options.attachments;
    if (options.mentions && options.mentions.length > 0) fields.mentions = options.mentions;
    const entry = { clientMessageId, conversationId, content, fields, state: "queued", attempts: 0, error: null };
    entry.promise = new Promise((resolve, reject) => {
      entry.resolve = resolve;
      entry.reject = reject;
    });
    this.queue.push(entry);
    this.tell(entry);
    this.pump();
    return entry.promise;
  }

  entries() {
    return this.queue.map((entry) => this.snapshot(entry));
  }

  /** Settle every send still queued as failed with `error` (the client was closed). */
  rejectAll(error) {
    for (const entry of this.queue.splice(0)) this.settle(entry, "failed", error);
  }

  /** What a send is, and where it stands: enough to show it, or send it again as it was. */
  snapshot(entry) {
    const { clientMessageId, conversationId, content, state, attempts, error } = entry;
    return {
      clientMessageId, conversationId, content, state, attempts, error,
      parentId: entry.fields.parent_id || null, mentions: entry.fields.mentions || [],
      message: entry.message || null,
    };
  }

  tell(entry) {
    this.client.emit("outbox", this.snapshot(entry));
  }

  settle(entry, state, outcome) {
    entry.state = state;
    if (state === "sent") entry.message = outcome;
    else entry.error = outcome;
    this.tell(entry);
    if (state === "sent") entry.resolve(outcome);
    else entry.reject(outcome);
  }

  mark(entry, state, error = null) {
    entry.state = state;
    entry.error = error;
    this.tell(entry);
  }

  /** Send the queue's head, one at a time, in order, while the connection is open. */
  async pump() {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0 && this.client.isOpen) await this.attempt(this.queue[0]);
    } finally {
      this.pumping = false;
    }
  }

  async attempt(entry) {
    entry.attempts += 1;
    this.mark(entry, "sending");
    let reply;
    try {
      reply = await this.client.request("SendMessage", entry.fields);
    } catch (error) {
      if (this.queue[0] !== entry) return; // settled by close() meanwhile
      if (!RETRYABLE.has(error.code)) {
        this.queue.shift();
        this.settle(entry, "failed", error);
        return;
      }
      // OFFLINE: the loop stops, as the connection is gone; Connected pumps again.
      this.mark(entry, error.code === "OFFLINE" ? "queued" : "waiting", error);
      if (error.code === "OFFLINE") return;
      const delay = error.retryAfterMs ?? this.delayFor(entry.attempts);
      await new Promise((resolve) => setTimeout(resolve, delay));
      return;
    }
    if (this.queue[0] !== entry) return;
    this.queue.shift();
    this.settle(entry, "sent", reply.message);
  }
}
