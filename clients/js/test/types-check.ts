// Compiled (never run) by types.test.js: hubbub.d.ts describes the API an app writes
// against, and refuses what it should.

import { HubbubClient, HubbubError, backoffDelay } from "../hubbub.js";
import type { Change, Message, OutboxEntry, SyncChunk } from "../hubbub.js";

const client = new HubbubClient({ url: "https://chat.example", getToken: async () => "jwt", useTicket: true });
const connected = await client.connect();
const me: string = connected.user_id;
const limit: number = connected.limits.max_content_chars;

const joined = await client.join("c", { sinceVersion: 3 });
const version: number = joined.conversation.version;
const sent: Message = await client.send("c", "hi", { clientMessageId: "c-1", parentId: "p", mentions: ["u"] });
const chunk: SyncChunk = await client.sync("c", version);
const first: Message | undefined = chunk.messages[0];

const off: () => void = client.on("change", (change: Change) => {
  switch (change.type) {
    case "NewMessage":
    case "MessageEdited":
    case "MessageSynced":
      console.log(change.message.content);
      break;
    case "MessageDeleted":
      console.log(change.deleted_by);
      break;
    case "ThreadUpdated":
      console.log(change.reply_count, change.last_reply_at);
      break;
    default:
      console.log(change.emoji, change.version);
  }
});
client.on("outbox", (entry: OutboxEntry) => console.log(entry.state === "waiting", entry.error?.code));
client.on("state", ({ state, code }) => console.log(state, code));
client.on("UserTyping", (event) => console.log(event.is_typing));
try {
  await client.edit(sent.id, "hello");
} catch (error) {
  if (error instanceof HubbubError) console.log(error.code, error.retryAfterMs);
}
const delay: number = backoffDelay(2);
console.log(me, limit, first, off, delay);

// @ts-expect-error: no such event
client.on("Nope", () => {});
// @ts-expect-error: content is a string
client.send("c", 42);
// @ts-expect-error: url is required
new HubbubClient({ token: "jwt" });
// @ts-expect-error: a NewMessage carries a message, not a version
client.on("NewMessage", (event) => event.version);
