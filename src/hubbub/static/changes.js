// The change events of hubbub.js's joined conversations, delivered to the app exactly once
// each, in version order per conversation (PROTOCOL.md §2: one counter per conversation, no
// gaps between consecutive changes). Events that arrive out of turn are held; a gap, or a
// (re)join that finds the conversation ahead, runs SyncMessages from the last version
// delivered, each synced message delivered as `MessageSynced` (its whole state, standing
// for the versions it skipped), then the held events that are still newer.

/** The events that change a message; each carries a per-conversation `version` (§2).
 * `ThreadUpdated` (a parent's reply count) takes a version of its own, like the others. */
export const CHANGE_TYPES = Object.freeze(
  ["NewMessage", "MessageEdited", "MessageDeleted", "ReactionAdded", "ReactionRemoved", "ThreadUpdated"]);

const versionOf = (frame) => (frame.message ? frame.message.version : frame.version);
const conversationOf = (frame) => (frame.message ? frame.message.conversation_id : frame.conversation_id);

export class Changes {
  /** @param {import("./hubbub.js").HubbubClient} client syncs with `patiently`, tells with `emit` */
  constructor(client) {
    this.client = client;
    this.conversations = new Map(); // id → {last, syncing, again, held}
  }

  ids() {
    return [...this.conversations.keys()];
  }

  /** Follow a conversation from `sinceVersion` (unknown: from its version at the join);
   * true when it was not followed yet. */
  track(id, sinceVersion) {
    const known = this.conversations.get(id);
    if (known) {
      if (sinceVersion !== undefined && known.last === null) known.last = sinceVersion;
      return false;
    }
    this.conversations.set(id, { last: sinceVersion ?? null, syncing: false, again: false, held: [] });
    return true;
  }

  untrack(id) {
    this.conversations.delete(id);
  }

  /** A join answered with the conversation at `version`: catch up to it. */
  async joined(id, version) {
    const conversation = this.conversations.get(id);
    if (!conversation) return;
    if (conversation.last === null) conversation.last = version;
    await this.catchUp(id, version > conversation.last);
  }

  onChange(frame) {
    const id = conversationOf(frame);
    const conversation = this.conversations.get(id);
    if (!conversation) { // joined without join(): passed on as it comes, unordered
      this.emit(frame);
      return;
    }
    conversation.held.push(frame);
    if (conversation.last !== null && !conversation.syncing) this.catchUp(id, false).catch(() => {});
  }

  emit(frame) {
    this.client.emit(frame.type, frame);
    this.client.emit("change", frame);
  }

  deliver(conversation, frame) {
    conversation.last = versionOf(frame);
    this.emit(frame);
  }

  /** Deliver held events in version order; on a gap (or when asked), SyncMessages from the
   * last version delivered. One catch-up at a time per conversation. */
  async catchUp(id, needSync) {
    const conversation = this.conversations.get(id);
    if (!conversation) return;
    if (conversation.syncing) {
      conversation.again ||= needSync;
      return;
    }
    conversation.syncing = true;
    try {
      for (;;) {
        conversation.again = false;
        if (needSync) await this.syncFrom(id, conversation);
        needSync = this.drain(conversation) || conversation.again;
        if (!needSync) return;
      }
    } finally {
      conversation.syncing = false;
    }
  }

  /** Held events: stale ones dropped, consecutive ones delivered; true on a gap. */
  drain(conversation) {
    conversation.held.sort((a, b) => versionOf(a) - versionOf(b));
    while (conversation.held.length > 0) {
      const frame = conversation.held[0];
      const version = versionOf(frame);
      if (version > conversation.last + 1) return true;
      conversation.held.shift();
      if (version === conversation.last + 1) this.deliver(conversation, frame);
    }
    return false;
  }

  async syncFrom(id, conversation) {
    for (;;) {
      const since = conversation.last;
      const chunk = await this.client.patiently("SyncMessages", { conversation_id: id, since_version: since });
      if (this.conversations.get(id) !== conversation) return;
      for (const message of chunk.messages) {
        if (message.version <= conversation.last) continue;
        this.deliver(conversation, { type: "MessageSynced", conversation_id: id, version: message.version, message });
      }
      conversation.last = Math.max(conversation.last, chunk.last_version);
      if (!chunk.has_more || chunk.last_version <= since) return;
    }
  }
}
