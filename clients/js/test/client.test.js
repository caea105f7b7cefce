// The SDK against a real hubbub server (test/server.js): send and receive, reconnect after
// a restart with sync, RATE_LIMITED retried, lost answers retried, each send settled once.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import WebSocket from "ws";

import { backoffDelay, HubbubClient, HubbubError } from "../hubbub.js";
import { mint, Server, until } from "./server.js";

/** `ws`, recording every frame the client sends; `dropAfter` closes the socket right after
 * sending a frame it matches, so that its answer is lost. */
function recordingSocket(sent, dropAfter = () => false) {
  return class extends WebSocket {
    send(data) {
      sent.push(JSON.parse(data));
      super.send(data);
      if (dropAfter(JSON.parse(data))) this.terminate();
    }
  };
}

/** `ws` that swallows the first frame it receives matching `drop`: an event lost on the way. */
function losingSocket(drop) {
  let lost = false;
  return class extends WebSocket {
    set onmessage(handler) {
      super.onmessage = (event) => {
        if (!lost && drop(JSON.parse(event.data))) {
          lost = true;
          return;
        }
        handler(event);
      };
    }

    get onmessage() {
      return super.onmessage;
    }
  };
}

function client(server, user, options = {}) {
  return new HubbubClient({ url: server.url, token: user.token, WebSocket, backoff: { baseMs: 50, maxMs: 500 }, ...options });
}

/** Every change the client delivers, in order, and a check that versions only increase. */
function changes(sdk, conversationId) {
  const seen = [];
  sdk.on("change", (frame) => {
    const cid = frame.message ? frame.message.conversation_id : frame.conversation_id;
    if (cid === conversationId) seen.push(frame);
  });
  return seen;
}

const versions = (seen) => seen.map((frame) => (frame.message ? frame.message.version : frame.version));
const contents = (seen) => seen.map((frame) => frame.message && frame.message.content);

/** A promise's settlements, counted: a second one would be a bug. */
function settlements(promise) {
  const count = { resolved: 0, rejected: 0 };
  promise.then(() => { count.resolved += 1; }, () => { count.rejected += 1; });
  return count;
}

test("backoff is full jitter under an exponential cap", () => {
  assert.equal(backoffDelay(0, 500, 30_000, () => 0.999), 499);
  assert.equal(backoffDelay(3, 500, 30_000, () => 0.5), 2000);
  assert.equal(backoffDelay(20, 500, 30_000, () => 0.999), 29_970);
  assert.equal(backoffDelay(5, 500, 30_000, () => 0), 0);
});

test("bad options are refused naming the option", () => {
  assert.throws(() => new HubbubClient({ token: "x", WebSocket }), /options\.url/);
  assert.throws(() => new HubbubClient({ url: "http://x" , WebSocket }), /options\.token/);
});

describe("against a server", () => {
  const server = new Server({ HUBBUB_RATE_LIMITS: "off" });
  const open = [];
  before(() => server.start());
  after(async () => {
    for (const sdk of open) sdk.close();
    await server.stop();
  });
  const connect = async (user, options) => {
    const sdk = client(server, user, options);
    open.push(sdk);
    await sdk.connect();
    return sdk;
  };

  test("a sent message resolves to the stored one and reaches the other member once", async () => {
    const alice = server.user("alice"), bob = server.user("bob");
    const group = await server.group(alice, bob);
    const a = await connect(alice), b = await connect(bob, { useTicket: true });
    assert.equal(a.connected.user_id, alice.id);
    await a.join(group.id);
    const joined = await b.join(group.id);
    assert.equal(joined.conversation.id, group.id);
    const seenByBob = changes(b, group.id);

    const message = await a.send(group.id, "hello bob", { clientMessageId: "c-1" });
    assert.equal(message.content, "hello bob");
    assert.equal(message.client_message_id, "c-1");
    assert.equal(message.sender_id, alice.id);
    await until(() => seenByBob.length === 1, "bob's NewMessage");
    assert.equal(seenByBob[0].type, "NewMessage");
    assert.equal(seenByBob[0].message.id, message.id);

    const edited = await a.edit(message.id, "hello, bob");
    assert.equal(edited.content, "hello, bob");
    await a.react(message.id, "👍");
    await b.typing(group.id, true);
    await b.markRead(group.id, message.id);
    await a.delete(message.id);
    await until(() => seenByBob.length === 4, "edit, reaction and delete");
    assert.deepEqual(seenByBob.map((f) => f.type), ["NewMessage", "MessageEdited", "ReactionAdded", "MessageDeleted"]);
    const v = versions(seenByBob);
    assert.deepEqual(v, [v[0], v[0] + 1, v[0] + 2, v[0] + 3]);

    const page = await b.history(group.id, { limit: 10 });
    assert.equal(page.type, "HistoryChunk");
    assert.equal(page.messages.length, 1);
    assert.ok(page.messages[0].deleted_at);
  });

  test("a refused send rejects once with the server's code and the connection survives", async () => {
    const alice = server.user("alice");
    const a = await connect(alice);
    const missing = "00000000-0000-4000-8000-000000000000";
    const sending = a.send(missing, "into the void");
    const count = settlements(sending);
    await assert.rejects(sending, (error) => error instanceof HubbubError && error.code === "NOT_FOUND");
    assert.deepEqual(count, { resolved: 0, rejected: 1 });
    assert.equal(a.outbox.length, 0);
    const pong = await a.request("Ping", { timestamp: 7 });
    assert.equal(pong.type, "Pong");
  });

  test("a send whose answer was lost is retried with the same client_message_id, once stored", async () => {
    const alice = server.user("alice");
    const group = await server.group(alice);
    const sent = [];
    let dropped = false;
    const Dropping = recordingSocket(sent, (frame) => {
      if (frame.type !== "SendMessage" || dropped) return false;
      dropped = true;
      return true;
    });
    const a = await connect(alice, { WebSocket: Dropping });
    await a.join(group.id);
    const sending = a.send(group.id, "said once");
    const count = settlements(sending);
    const message = await sending;
    const attempts = sent.filter((frame) => frame.type === "SendMessage");
    assert.equal(attempts.length, 2);
    assert.equal(attempts[0].client_message_id, attempts[1].client_message_id);
    assert.equal(message.client_message_id, attempts[0].client_message_id);
    const page = await a.history(group.id);
    assert.deepEqual(page.messages.map((m) => m.content), ["said once"]);
    assert.deepEqual(count, { resolved: 1, rejected: 0 });
  });

  test("after a restart it reconnects, re-joins and syncs what it missed, each change once", async () => {
    const alice = server.user("alice"), bob = server.user("bob");
    const group = await server.group(alice, bob);
    // Alice's reconnects wait at this gate, so that Bob's messages surely come meanwhile.
    let openGate = () => {};
    let gate = Promise.resolve();
    const a = await connect(alice, { token: undefined, getToken: async () => { await gate; return alice.token; } });
    await a.join(group.id);
    const seen = changes(a, group.id);
    await a.send(group.id, "before");
    await until(() => seen.length === 1, "alice's own message");

    gate = new Promise((done) => { openGate = done; });
    await server.stop();
    await until(() => a.state !== "open", "alice to notice");
    const queued = a.send(group.id, "while away", { mentions: [bob.id] });
    const count = settlements(queued);
    // The entry carries what it takes to send it again as it was.
    const { state, parentId, mentions } = a.outbox[0];
    assert.deepEqual([state, parentId, mentions], ["queued", null, [bob.id]]);
    await server.start();
    for (const text of ["missed 1", "missed 2", "missed 3"]) {
      await server.api(bob, "POST", `/api/v1/conversations/${group.id}/messages`, { content: text });
    }
    openGate();
    await queued;
    await until(() => seen.length === 5, "the missed messages and alice's queued one");
    const v = versions(seen);
    assert.deepEqual(v, [...v].sort((x, y) => x - y));
    assert.equal(new Set(v).size, v.length);
    assert.deepEqual(contents(seen).slice(0, 4), ["before", "missed 1", "missed 2", "missed 3"]);
    assert.ok(seen.slice(1, 4).every((frame) => frame.type === "MessageSynced"));
    assert.equal(contents(seen)[4], "while away");

    // Live again: Bob's next message arrives as a plain NewMessage, once.
    await server.api(bob, "POST", `/api/v1/conversations/${group.id}/messages`, { content: "live" });
    await until(() => seen.length === 6, "the live message");
    assert.equal(seen[5].type, "NewMessage");
    assert.deepEqual(count, { resolved: 1, rejected: 0 });
  });

  test("a thread reply and its parent's ThreadUpdated come in version order, with no sync", async () => {
    const alice = server.user("alice"), bob = server.user("bob");
    const group = await server.group(alice, bob);
    const sent = [];
    const a = await connect(alice, { WebSocket: recordingSocket(sent) });
    await a.join(group.id);
    const seen = changes(a, group.id);
    const parent = await a.send(group.id, "plan?");
    const reply = await a.send(group.id, "friday", { parentId: parent.id, mentions: [bob.id] });
    assert.deepEqual(reply.mentions, [bob.id]);
    await a.send(group.id, "after");
    await until(() => seen.length === 4, "four changes");
    assert.deepEqual(seen.map((f) => f.type), ["NewMessage", "NewMessage", "ThreadUpdated", "NewMessage"]);
    assert.equal(seen[2].message_id, parent.id);
    assert.equal(seen[2].reply_count, 1);
    const v = versions(seen);
    assert.deepEqual(v, [v[0], v[0] + 1, v[0] + 2, v[0] + 3]);
    assert.equal(sent.filter((frame) => frame.type === "SyncMessages").length, 0);
  });

  test("a version gap in the live events is filled by a sync, each change once, in order", async () => {
    const alice = server.user("alice"), bob = server.user("bob");
    const group = await server.group(alice, bob);
    const Losing = losingSocket((frame) => frame.type === "NewMessage" && frame.message.content === "lost");
    const a = await connect(alice, { WebSocket: Losing });
    await a.join(group.id);
    const seen = changes(a, group.id);
    for (const text of ["first", "lost", "after"]) {
      await server.api(bob, "POST", `/api/v1/conversations/${group.id}/messages`, { content: text });
    }
    await until(() => seen.length === 3, "three changes");
    assert.deepEqual(contents(seen), ["first", "lost", "after"]);
    assert.equal(seen[1].type, "MessageSynced");
    const v = versions(seen);
    assert.deepEqual(v, [v[0], v[0] + 1, v[0] + 2]);
    // Nothing more comes: the held "after" was not delivered a second time.
    await a.request("Ping");
    assert.equal(seen.length, 3);
  });

  test("a token that expires (4001) is refreshed through getToken and the client carries on", async () => {
    const alice = server.user("alice");
    const group = await server.group(alice);
    const tokens = [mint(server.secret, alice.id, "alice", 2)];
    let asked = 0;
    const getToken = () => tokens[asked++] || alice.token;
    const closes = [];
    const a = client(server, alice, { token: undefined, getToken });
    open.push(a);
    a.on("state", ({ state, code }) => { if (state === "closed") closes.push(code); });
    await a.connect();
    await a.join(group.id);
    await until(() => closes.includes(4001), "the server to close the expired connection", 30_000);
    await until(() => a.isOpen, "the reconnect with a fresh token");
    assert.ok(asked >= 2);
    const message = await a.send(group.id, "still here");
    assert.equal(message.content, "still here");
  });

  test("without getToken an expired token (4001) stops the client", async () => {
    const alice = server.user("alice");
    const a = client(server, { ...alice, token: mint(server.secret, alice.id, "alice", 2) });
    open.push(a);
    const closes = [];
    a.on("state", ({ state, code }) => { if (state === "closed") closes.push(code); });
    await a.connect();
    await until(() => closes.includes(4001), "the server to close the expired connection", 30_000);
    await until(() => a.stopped, "the client to give up");
    assert.equal(a.state, "closed");
  });

  test("close() rejects the sends still queued, once", async () => {
    const alice = server.user("alice");
    const group = await server.group(alice);
    const a = client(server, alice);
    const sending = a.send(group.id, "never connected");
    const count = settlements(sending);
    a.close();
    await assert.rejects(sending, (error) => error.code === "CLOSED");
    assert.deepEqual(count, { resolved: 0, rejected: 1 });
  });
});

describe("against a server with a low send rate", () => {
  const server = new Server({ HUBBUB_SEND_RATE: "2", HUBBUB_SEND_BURST: "2" });
  let sdk = null;
  before(() => server.start());
  after(async () => {
    if (sdk) sdk.close();
    await server.stop();
  });

  test("RATE_LIMITED sends wait retry_after_ms and are retried with the same id, in order", async () => {
    const alice = server.user("alice");
    const group = await server.group(alice);
    const sent = [];
    const received = [];
    sdk = client(server, alice, { WebSocket: recordingSocket(sent) });
    sdk.on("outbox", (entry) => received.push(entry.state));
    await sdk.connect();
    await sdk.join(group.id);
    const texts = ["one", "two", "three", "four", "five", "six"];
    const sends = texts.map((text) => sdk.send(group.id, text));
    const counts = sends.map(settlements);
    const messages = await Promise.all(sends);
    assert.deepEqual(messages.map((m) => m.content), texts);
    assert.ok(received.includes("waiting"), "no send was rate-limited: the limit did not bite");
    const attempts = sent.filter((frame) => frame.type === "SendMessage");
    assert.ok(attempts.length > texts.length);
    const ids = new Set(attempts.map((frame) => frame.client_message_id));
    assert.equal(ids.size, texts.length);
    const page = await sdk.history(group.id);
    assert.deepEqual(page.messages.map((m) => m.content), texts);
    assert.ok(counts.every((c) => c.resolved === 1 && c.rejected === 0));
  });
});
