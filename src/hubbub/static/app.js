// hubbub's browser client: conversations, messages, typing, read marks, reactions and calls,
// over the public protocol only (REST §7 and /ws), through the JavaScript SDK (hubbub.js,
// the same file as clients/js/hubbub.js). No framework and no build step.
//
// The SDK reconnects, re-joins and syncs, and delivers each change once in version order;
// messages not sent yet wait in its outbound queue and are shown with their state.
//
// Page state is exposed for tests and debugging as `window.hubbub` and as attributes:
// <body data-ws="open|closed" data-call-state="idle|ringing|active|ended">.

import { CallController } from "./call.js";
import { HubbubClient } from "./hubbub.js";
import { showUnsent } from "./unsent.js";
// Threads, mentions, search, image previews and the channel directory, each its own module.
import { attachmentsElement } from "./attachments.js";
import { installDirectory } from "./directory.js";
import { attachMentions, contentNodes, mentionsMe } from "./mentions.js";
import { installSearch } from "./search.js";
import { installThreads, threadFooter } from "./thread.js";

// Where hubbub is served: this file is `{base}/static/app.js`, so `{base}/` is one level up
// (hubbub under HUBBUB_BASE_PATH=/chat needs nothing else of the page).
const BASE_URL = new URL("../", import.meta.url).href;

const $ = (id) => document.getElementById(id);

const QUICK_REACTIONS = ["👍", "❤️", "😂", "🎉"];
const PAGE_SIZE = 50;
// §3 Typing: a typist refreshes while typing; we stop after a pause, and show another
// typist for a while even if its stop is lost.
const TYPING_REFRESH_MS = 3000;
const TYPING_IDLE_MS = 4000;
const TYPING_SHOWN_MS = 8000;
// The conversation list has no push event of its own (being added to one arrives with its
// first use), so it is refreshed now and then, and on demand.
const LIST_REFRESH_MS = 10000;
// JoinConversation is per connection; subscribing to this many keeps unread counts live.
const MAX_SUBSCRIPTIONS = 100;
const TOKEN_KEY = "hubbub.token";

const state = {
  api: null,
  client: null,
  calls: null,
  me: null,
  conversations: new Map(), // id → conversation object (§2), the caller's view
  order: [], // conversation ids, newest activity first
  current: null, // the open conversation's id
  messages: new Map(), // conversation id → Map(message id → message object)
  paging: new Map(), // conversation id → {hasMore, nextBefore}
  unsent: new Map(), // client_message_id → the SDK's outbox entry, until it is sent
  members: new Map(), // conversation id → [{user_id, user_name, role, online}]
  names: new Map(), // user id → display name
  joined: new Map(), // conversation id → its JoinConversation (the SDK re-joins)
  typing: new Map(), // conversation id → Map(user id → {name, until})
  readBy: new Map(), // conversation id → Map(user id → message id)
  markedRead: new Map(), // conversation id → message id we last marked read
  typingSentAt: 0,
  typingTimer: null,
  listTimer: null,
};

window.hubbub = {
  state,
  get me() { return state.me; },
  get connected() { return isOpen(); },
  get client() { return state.client; },
  get unsent() { return [...state.unsent.values()]; },
  get current() { return state.current; },
  get call() { return state.calls ? state.calls.call : null; },
  inboundBytes(trackId) { return state.calls ? state.calls.inboundBytes(trackId) : 0; },
};

// -- signing in ------------------------------------------------------------------------

function boot() {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("token").value.trim());
  });
  $("sign-out").addEventListener("click", signOut);
  $("copy-id").addEventListener("click", copyId);
  $("refresh").addEventListener("click", () => refreshConversations());
  $("new-kind").addEventListener("change", () => {
    $("new-name").disabled = $("new-kind").value === "direct";
  });
  $("new-conversation-form").addEventListener("submit", createConversation);
  $("conversation-list").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-conversation-id]");
    if (button) openConversation(button.dataset.conversationId);
  });
  $("load-older").addEventListener("click", () => loadHistory(state.current, true));
  $("messages").addEventListener("click", onMessageClick);
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    sendMessage();
  });
  $("composer-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendMessage();
    }
  });
  $("composer-input").addEventListener("input", onTypingInput);
  $("composer-input").addEventListener("blur", () => stopTyping());
  $("audio-call").addEventListener("click", () => placeCall("audio"));
  $("video-call").addEventListener("click", () => placeCall("video"));
  $("answer").addEventListener("click", () => state.calls.answer());
  $("decline").addEventListener("click", () => state.calls.decline());
  $("hangup").addEventListener("click", () => state.calls.hangUp());
  $("dismiss").addEventListener("click", () => state.calls.dismiss());
  $("mute").addEventListener("click", () => state.calls.toggleMute());
  $("camera").addEventListener("click", () => mediaAction(() => state.calls.toggleCamera()));
  $("screen").addEventListener("click", () => mediaAction(() => state.calls.toggleScreen()));
  document.addEventListener("visibilitychange", () => markRead());
  window.addEventListener("focus", () => { if (state.me) refreshConversations(); });

  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved);
}

function isOpen() {
  return state.client !== null && state.client.isOpen;
}

/** Fire and forget: the response is awaited but a refusal only logged. */
function notify(type, fields) {
  state.client.request(type, fields).catch((error) => console.debug(type, "refused:", error.code));
}

async function signIn(token) {
  $("login-error").textContent = "";
  if (!token) return;
  // A single-use ticket (§1) keeps the long-lived token out of the WebSocket's URL. After
  // an expired token, the same client goes on with the new one: its unsent messages too.
  const client = state.client || new HubbubClient({ url: BASE_URL, token, useTicket: true });
  client.setToken(token);
  const api = {
    get: (path) => client.http("GET", path),
    post: (path, body) => client.http("POST", path, body),
  };
  let me;
  try {
    me = await api.get("/api/v1/users/me");
  } catch (error) {
    $("login-error").textContent = error.code === "UNAUTHORIZED"
      ? `That token was refused: ${error.message}.`
      : `Could not reach the server: ${error.message}.`;
    sessionStorage.removeItem(TOKEN_KEY);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token").value = "";
  if (state.client) {
    resume(me);
    return;
  }
  state.api = api;
  state.me = me;
  state.names.set(me.id, me.name);
  $("me-name").textContent = me.name;
  $("me-id").textContent = me.id;
  $("whoami").hidden = false;
  $("login").hidden = true;
  $("app").hidden = false;

  state.client = client;
  state.calls = new CallController(client, { onChange: renderCall, nameOf });
  client.on("Connected", onConnected);
  client.on("state", onState);
  client.on("outbox", onOutbox);
  client.on("NewMessage", (m) => onMessageEvent(m.message, true));
  client.on("MessageEdited", (m) => onMessageEvent(m.message, false));
  // A sync after a reconnect or a gap: the message's whole state, new to us or not.
  client.on("MessageSynced", (m) => onMessageEvent(m.message, !isKnown(m.message)));
  client.on("MessageDeleted", onDeleted);
  client.on("ReactionAdded", (m) => onReaction(m, true));
  client.on("ReactionRemoved", (m) => onReaction(m, false));
  client.on("UserTyping", onTyping);
  client.on("MessageRead", onRead);
  client.on("UserJoined", onUserJoined);
  client.on("CallOffer", (m) => {
    if (!state.conversations.has(m.conversation_id)) refreshConversations();
  });
  installFeatures();
  setStatus("Connecting…");
  await refreshConversations();
  client.connect().catch(() => {}); // a refused token shows through onState
  state.listTimer = setInterval(() => refreshConversations(), LIST_REFRESH_MS);
}

/** Signed in again after the token expired: the same user carries on where it was. */
function resume(me) {
  if (me.id !== state.me.id) {
    location.reload(); // someone else: start afresh (the new token is kept)
    return;
  }
  $("login").hidden = true;
  setStatus("Connecting…");
  state.client.connect().catch(() => {});
}

function signOut() {
  if (state.calls) state.calls.hangUp();
  if (state.client) state.client.close();
  sessionStorage.removeItem(TOKEN_KEY);
  location.reload();
}

async function copyId() {
  try {
    await navigator.clipboard.writeText(state.me.id);
    setStatus("Your id was copied.");
  } catch {
    setStatus("Copy failed: select the id and copy it.");
  }
}

function setStatus(text) {
  $("connection-status").textContent = text;
}

function onConnected() {
  document.body.dataset.ws = "open";
  setStatus("Connected");
  // The SDK re-joins and syncs what was joined; this joins what could not be, offline.
  joinAll();
}

function onState(event) {
  if (event.state !== "closed") return;
  document.body.dataset.ws = "closed";
  if (event.code === 4001) {
    setStatus("Your token expired: sign in again.");
    sessionStorage.removeItem(TOKEN_KEY);
    $("login").hidden = false;
    $("login-error").textContent = "Your token expired: paste a new one.";
  } else {
    setStatus("Disconnected: reconnecting…");
  }
}

// -- conversations ---------------------------------------------------------------------

async function refreshConversations() {
  if (!state.api) return;
  let body;
  try {
    body = await state.api.get("/api/v1/conversations");
  } catch (error) {
    setStatus(`Could not load conversations: ${error.message}`);
    return;
  }
  state.order = [];
  for (const conversation of body.conversations) {
    const known = state.conversations.get(conversation.id);
    if (known && state.current === conversation.id) conversation.unread_count = 0;
    state.conversations.set(conversation.id, { ...known, ...conversation });
    state.order.push(conversation.id);
    if (conversation.kind === "direct" && !state.members.has(conversation.id)) {
      loadMembers(conversation.id).then(renderList);
    }
  }
  renderList();
  joinAll();
}

function joinAll() {
  for (const id of state.order.slice(0, MAX_SUBSCRIPTIONS)) join(id).catch(() => {});
}

/** Subscribe to a conversation's events, once: the SDK keeps it joined across reconnects. */
function join(id) {
  if (!isOpen()) return Promise.reject(new Error("not connected"));
  let pending = state.joined.get(id);
  if (!pending) {
    pending = state.client.join(id);
    state.joined.set(id, pending);
    pending.catch(() => { if (state.joined.get(id) === pending) state.joined.delete(id); });
  }
  return pending;
}

async function loadMembers(id) {
  try {
    const body = await state.api.get(`/api/v1/conversations/${id}/members`);
    state.members.set(id, body.members);
    for (const member of body.members) state.names.set(member.user_id, member.user_name);
  } catch {
    state.members.set(id, []);
  }
  return state.members.get(id);
}

function nameOf(userId) {
  return state.names.get(userId) || `user ${userId.slice(0, 8)}`;
}

function titleOf(conversation) {
  if (conversation.kind !== "direct") {
    return (conversation.kind === "channel" ? "#" : "") + conversation.name;
  }
  const other = (state.members.get(conversation.id) || [])
    .find((member) => member.user_id !== state.me.id);
  return other ? other.user_name : "Direct conversation";
}

function renderList() {
  const list = $("conversation-list");
  list.replaceChildren(...state.order.map((id) => {
    const conversation = state.conversations.get(id);
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "conversation";
    button.dataset.conversationId = id;
    if (id === state.current) button.setAttribute("aria-current", "true");
    const title = document.createElement("span");
    title.textContent = titleOf(conversation);
    button.append(title);
    const unread = conversation.unread_count || 0;
    if (unread > 0 && id !== state.current) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = String(unread);
      badge.setAttribute("aria-label", `${unread} unread`);
      button.append(badge);
    }
    item.append(button);
    return item;
  }));
  $("no-conversations").hidden = state.order.length > 0;
  if (state.current && state.conversations.has(state.current)) {
    $("chat-title").textContent = titleOf(state.conversations.get(state.current));
  }
}

async function createConversation(event) {
  event.preventDefault();
  $("new-error").textContent = "";
  const kind = $("new-kind").value;
  const body = {
    kind,
    member_ids: $("new-members").value.split(/[\s,]+/).filter(Boolean),
  };
  if (kind !== "direct") body.name = $("new-name").value.trim();
  let conversation;
  try {
    conversation = await state.api.post("/api/v1/conversations", body);
  } catch (error) {
    $("new-error").textContent = error.message;
    return;
  }
  $("new-conversation-form").reset();
  $("new-name").disabled = true;
  $("new-conversation").open = false;
  await refreshConversations();
  state.conversations.set(conversation.id, {
    ...conversation, ...state.conversations.get(conversation.id),
  });
  openConversation(conversation.id);
}

async function openConversation(id) {
  stopTyping();
  state.current = id;
  const conversation = state.conversations.get(id);
  if (conversation) conversation.unread_count = 0;
  renderList();
  $("chat-title").textContent = conversation ? titleOf(conversation) : "Conversation";
  $("composer").hidden = false;
  $("call-controls").hidden = false;
  $("composer-error").textContent = "";
  renderMessages();
  renderTyping();
  loadMembers(id).then(() => {
    if (state.current === id) {
      renderCallTargets();
      renderList();
    }
  });
  // Subscribed first, then the history: nothing sent in between can fall through.
  await join(id).catch(() => {});
  if (!state.messages.has(id)) await loadHistory(id, false);
  markRead();
  $("composer-input").focus();
}

// -- messages --------------------------------------------------------------------------

// Pages of thread replies only (shown in their threads, not the timeline) loaded on at once.
const MAX_REPLY_PAGES = 10;

async function loadHistory(id, older, replyPages = 0) {
  const paging = state.paging.get(id);
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (older && paging && paging.nextBefore !== null) params.set("before", paging.nextBefore);
  let page;
  try {
    page = await state.api.get(`/api/v1/conversations/${id}/messages?${params}`);
  } catch (error) {
    $("composer-error").textContent = `Could not load messages: ${error.message}`;
    return;
  }
  const messages = state.messages.get(id) || new Map();
  state.messages.set(id, messages);
  for (const message of page.messages) {
    const known = messages.get(message.id);
    if (!known || known.version < message.version) messages.set(message.id, message);
  }
  state.paging.set(id, { hasMore: page.has_more, nextBefore: page.next_before });
  if (state.current === id) renderMessages();
  const onlyReplies = page.messages.length > 0 && page.messages.every((m) => m.parent_id);
  if (onlyReplies && page.has_more && replyPages < MAX_REPLY_PAGES) {
    await loadHistory(id, true, replyPages + 1);
  }
}

function isKnown(message) {
  const messages = state.messages.get(message.conversation_id);
  return Boolean(messages && messages.has(message.id));
}

function putMessage(message) {
  const messages = state.messages.get(message.conversation_id);
  if (!messages) return;
  const known = messages.get(message.id);
  if (known && known.version > message.version) return;
  messages.set(message.id, message);
  if (state.current === message.conversation_id) renderMessage(message);
}

function onMessageEvent(message, isNew) {
  const id = message.conversation_id;
  putMessage(message);
  const conversation = state.conversations.get(id);
  if (isNew && conversation) {
    conversation.last_message = message;
    state.order = [id, ...state.order.filter((other) => other !== id)];
    if (message.sender_id !== state.me.id && id !== state.current) {
      conversation.unread_count = (conversation.unread_count || 0) + 1;
    }
    renderList();
  }
  if (isNew && message.sender_id !== state.me.id) {
    clearTypist(id, message.sender_id);
    if (id === state.current) markRead();
  }
}

function onDeleted(event) {
  const message = (state.messages.get(event.conversation_id) || new Map()).get(event.message_id);
  if (!message) return;
  putMessage({
    ...message, version: event.version, content: "", attachments: [], reactions: [],
    deleted_at: event.deleted_at,
  });
}

function onReaction(event, added) {
  const message = (state.messages.get(event.conversation_id) || new Map()).get(event.message_id);
  if (!message) return;
  const reactions = message.reactions.map((r) => ({ ...r, user_ids: [...r.user_ids] }));
  let reaction = reactions.find((r) => r.emoji === event.emoji);
  if (added) {
    if (!reaction) {
      reaction = { emoji: event.emoji, count: 0, user_ids: [] };
      reactions.push(reaction);
    }
    if (!reaction.user_ids.includes(event.user_id)) reaction.user_ids.push(event.user_id);
  } else if (reaction) {
    reaction.user_ids = reaction.user_ids.filter((uid) => uid !== event.user_id);
  }
  for (const r of reactions) r.count = r.user_ids.length;
  putMessage({ ...message, version: event.version, reactions: reactions.filter((r) => r.count > 0) });
}

function renderMessages() {
  const list = $("messages");
  const messages = state.current ? state.messages.get(state.current) : null;
  const sorted = messages
    ? [...messages.values()].filter((m) => !m.parent_id).sort((a, b) => a.seq - b.seq) : [];
  list.replaceChildren(...sorted.map(messageElement));
  renderUnsent();
  const paging = state.paging.get(state.current);
  $("load-older").hidden = !(paging && paging.hasMore);
  list.scrollTop = list.scrollHeight;
}

function renderMessage(message) {
  if (message.parent_id) return; // a thread's reply: shown in its thread (thread.js)
  const list = $("messages");
  const element = messageElement(message);
  const existing = [...list.children].find((li) => li.dataset.messageId === message.id);
  if (existing) {
    existing.replaceWith(element);
    return;
  }
  const after = [...list.children].find(
    (li) => li.classList.contains("unsent") || Number(li.dataset.seq) > message.seq);
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.insertBefore(element, after || null);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function messageElement(message) {
  const mine = message.sender_id === state.me.id;
  const system = message.kind === "system"; // posted by the backend, nobody's (PROTOCOL §2)
  const item = document.createElement("li");
  item.className = system ? "message system" : mine ? "message mine" : "message";
  item.dataset.messageId = message.id;
  item.dataset.seq = String(message.seq);

  const meta = document.createElement("p");
  meta.className = "meta";
  const sender = document.createElement("span");
  sender.className = "sender";
  sender.textContent = system ? "Notice" : mine ? "You" : message.sender_name;
  const time = document.createElement("time");
  time.dateTime = message.created_at;
  time.textContent = new Date(message.created_at)
    .toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  meta.append(sender, " · ", time);
  if (message.edited_at && !message.deleted_at) meta.append(" · edited");
  item.append(meta);

  const content = document.createElement("p");
  content.className = "content";
  if (message.deleted_at) {
    content.classList.add("deleted");
    content.textContent = "This message was deleted.";
  } else {
    content.append(...contentNodes(message, nameOf, state.me.id));
  }
  item.append(content);
  const files = message.deleted_at ? null : attachmentsElement(message);
  if (files) item.append(files);
  if (mentionsMe(message, state.me.id)) item.classList.add("mentions-me");

  if (!message.deleted_at) item.append(reactionsElement(message));
  const thread = threadFooter(message);
  if (thread) item.append(thread);

  const readers = [...(state.readBy.get(message.conversation_id) || new Map()).entries()]
    .filter(([, messageId]) => messageId === message.id).map(([uid]) => nameOf(uid));
  if (readers.length > 0) {
    const read = document.createElement("p");
    read.className = "read-by";
    read.textContent = `Read by ${readers.join(", ")}`;
    item.append(read);
  }
  return item;
}

function reactionsElement(message) {
  const group = document.createElement("div");
  group.className = "reactions";
  group.setAttribute("role", "group");
  group.setAttribute("aria-label", "Reactions");
  const present = new Set();
  for (const reaction of message.reactions) {
    present.add(reaction.emoji);
    const pressed = reaction.user_ids.includes(state.me.id);
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.emoji = reaction.emoji;
    button.setAttribute("aria-pressed", String(pressed));
    button.setAttribute("aria-label",
      `${reaction.emoji} ${reaction.count}: ${pressed ? "remove your reaction" : "react too"}`);
    button.textContent = `${reaction.emoji} ${reaction.count}`;
    group.append(button);
  }
  for (const emoji of QUICK_REACTIONS) {
    if (present.has(emoji)) continue;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "add";
    button.dataset.emoji = emoji;
    button.setAttribute("aria-pressed", "false");
    button.setAttribute("aria-label", `React with ${emoji}`);
    button.textContent = `+${emoji}`;
    group.append(button);
  }
  return group;
}

function onMessageClick(event) {
  const retry = event.target.closest("button[data-unsent-action]");
  if (retry) {
    onUnsentClick(retry);
    return;
  }
  const button = event.target.closest("button[data-emoji]");
  if (!button) return;
  const item = button.closest("li[data-message-id]");
  const message = state.messages.get(state.current).get(item.dataset.messageId);
  const mine = message.reactions.some(
    (r) => r.emoji === button.dataset.emoji && r.user_ids.includes(state.me.id));
  state.client.react(message.id, button.dataset.emoji, { remove: mine })
    .catch((error) => { $("composer-error").textContent = `Reaction failed: ${error.message}`; });
}

/** Queue the message in the SDK: it is sent when connected, retried through rate limits
 * and reconnects with the same client_message_id; until then it shows as unsent. */
function sendMessage() {
  const input = $("composer-input");
  const content = input.value.trim();
  if (!content || !state.current) return;
  $("composer-error").textContent = "";
  stopTyping();
  input.value = "";
  deliver(state.current, content, crypto.randomUUID(), takeMentions(content));
}

function deliver(conversationId, content, clientMessageId, mentions = []) {
  state.client.send(conversationId, content, { clientMessageId, mentions })
    .then(putMessage, () => {}); // a refusal stays in view as a failed entry
}

function onOutbox(entry) {
  if (entry.state === "sent") state.unsent.delete(entry.clientMessageId);
  else state.unsent.set(entry.clientMessageId, entry);
  if (entry.conversationId === state.current) renderUnsent();
}

/** The current conversation's unsent messages, after the sent ones, with their state. */
function renderUnsent() {
  const entries = [...state.unsent.values()].filter((e) => e.conversationId === state.current);
  showUnsent($("messages"), entries);
}

function onUnsentClick(button) {
  const id = button.closest("li.unsent").dataset.clientMessageId;
  const entry = state.unsent.get(id);
  if (!entry) return;
  state.unsent.delete(id);
  // The same client_message_id: were it stored after all, it is not stored twice.
  if (button.dataset.unsentAction === "retry") deliver(entry.conversationId, entry.content, id);
  else renderUnsent();
}

// -- read marks ------------------------------------------------------------------------

function markRead() {
  const id = state.current;
  if (!id || document.visibilityState !== "visible" || !isOpen()) return;
  const messages = state.messages.get(id);
  if (!messages || messages.size === 0) return;
  const newest = [...messages.values()].reduce((a, b) => (a.seq > b.seq ? a : b));
  if (state.markedRead.get(id) === newest.id) return;
  state.markedRead.set(id, newest.id);
  notify("MarkAsRead", { conversation_id: id, message_id: newest.id });
}

function onRead(event) {
  if (event.user_id === state.me.id) return;
  const readers = state.readBy.get(event.conversation_id) || new Map();
  state.readBy.set(event.conversation_id, readers);
  const previous = readers.get(event.user_id);
  readers.set(event.user_id, event.message_id);
  const messages = state.messages.get(event.conversation_id);
  if (!messages || state.current !== event.conversation_id) return;
  for (const id of [previous, event.message_id]) {
    if (id && messages.has(id)) renderMessage(messages.get(id));
  }
}

// -- typing ----------------------------------------------------------------------------

function onTypingInput() {
  const id = state.current;
  if (!id || !isOpen()) return;
  const now = Date.now();
  if (now - state.typingSentAt > TYPING_REFRESH_MS) {
    state.typingSentAt = now;
    notify("Typing", { conversation_id: id, is_typing: true });
  }
  clearTimeout(state.typingTimer);
  state.typingTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
}

function stopTyping() {
  clearTimeout(state.typingTimer);
  if (state.typingSentAt === 0 || !state.current) return;
  state.typingSentAt = 0;
  if (isOpen()) notify("Typing", { conversation_id: state.current, is_typing: false });
}

function onTyping(event) {
  if (event.user_id === state.me.id) return;
  const typists = state.typing.get(event.conversation_id) || new Map();
  state.typing.set(event.conversation_id, typists);
  if (event.is_typing) {
    typists.set(event.user_id, { name: event.user_name, until: Date.now() + TYPING_SHOWN_MS });
    setTimeout(renderTyping, TYPING_SHOWN_MS + 50);
  } else {
    typists.delete(event.user_id);
  }
  renderTyping();
}

function clearTypist(conversationId, userId) {
  const typists = state.typing.get(conversationId);
  if (typists && typists.delete(userId)) renderTyping();
}

function renderTyping() {
  const typists = state.typing.get(state.current) || new Map();
  const now = Date.now();
  const names = [...typists.entries()].filter(([, t]) => t.until > now).map(([, t]) => t.name);
  $("typing").textContent = names.length === 0 ? ""
    : names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`;
}

function onUserJoined(event) {
  state.names.set(event.user_id, event.user_name);
  if (event.conversation_id === state.current) loadMembers(state.current).then(renderCallTargets);
}

// -- calls -----------------------------------------------------------------------------

function renderCallTargets() {
  const conversation = state.conversations.get(state.current);
  const others = (state.members.get(state.current) || [])
    .filter((member) => member.user_id !== state.me.id && member.role !== "banned");
  const select = $("call-target");
  const chosen = select.value;
  select.replaceChildren(...others.map((member) => {
    const option = document.createElement("option");
    option.value = member.user_id;
    option.textContent = member.user_name;
    return option;
  }));
  if (others.some((member) => member.user_id === chosen)) select.value = chosen;
  $("call-target-field").hidden = !conversation || conversation.kind === "direct";
  const disabled = others.length === 0 || (state.calls && state.calls.busy);
  $("audio-call").disabled = disabled;
  $("video-call").disabled = disabled;
}

async function placeCall(type) {
  const conversation = state.conversations.get(state.current);
  if (!conversation || state.calls.busy) return;
  const direct = conversation.kind === "direct";
  const members = state.members.get(conversation.id) || await loadMembers(conversation.id);
  const peerId = direct
    ? (members.find((member) => member.user_id !== state.me.id) || {}).user_id
    : $("call-target").value;
  if (!peerId) return;
  try {
    await state.calls.start(conversation.id, type, peerId, nameOf(peerId),
                            direct ? null : peerId);
  } catch (error) {
    $("call-status").textContent = error.message;
  }
}

async function mediaAction(action) {
  try {
    await action();
  } catch (error) {
    $("call-status").textContent = `That did not work: ${error.message}`;
  }
}

function renderCall(call) {
  const section = $("call");
  document.body.dataset.callState = call ? call.state : "idle";
  section.hidden = call === null;
  renderCallTargets();
  if (!call) {
    delete section.dataset.callId;
    document.title = "hubbub";
    return;
  }
  section.dataset.callId = call.id;
  section.dataset.connection = call.pc ? call.pc.connectionState : "new";
  $("call-title").textContent = `${call.type === "video" ? "Video" : "Audio"} call with ${call.peerName}`;
  $("call-status").textContent = call.status;
  const ringingIn = call.state === "ringing" && call.role === "callee";
  document.title = ringingIn ? "Incoming call – hubbub" : "hubbub";
  $("answer").hidden = !ringingIn || call.answering;
  $("decline").hidden = !ringingIn || call.answering;
  const live = call.state === "active";
  $("mute").hidden = !live;
  $("camera").hidden = !live;
  $("screen").hidden = !live;
  $("hangup").hidden = !(live || (call.state === "ringing" && call.role === "caller"));
  $("hangup").textContent = live ? "Hang up" : "Cancel";
  $("dismiss").hidden = call.state !== "ended";
  // Each toggle's label says what a press does next.
  $("mute").textContent = call.muted ? "Unmute" : "Mute";
  const hasCamera = call.localStream !== null && call.localStream.getVideoTracks().length > 0;
  $("camera").textContent = hasCamera && !call.cameraOff ? "Turn camera off" : "Turn camera on";
  $("screen").textContent = call.screenSender ? "Stop sharing" : "Share screen";

  const local = $("local-video");
  local.hidden = !hasCamera || call.state === "ended";
  if (hasCamera && local.srcObject !== call.localStream) local.srcObject = call.localStream;

  const remote = $("remote-media");
  const streams = call.state === "ended" ? new Map() : call.remoteStreams;
  for (const video of [...remote.children]) {
    if (!streams.has(video.dataset.streamId)) video.remove();
  }
  let index = 0;
  for (const [id, stream] of streams) {
    index += 1;
    let video = [...remote.children].find((element) => element.dataset.streamId === id);
    if (!video) {
      video = document.createElement("video");
      video.autoplay = true;
      video.playsInline = true;
      video.dataset.streamId = id;
      video.srcObject = stream;
      remote.append(video);
    }
    video.setAttribute("aria-label", index === 1 ? `${call.peerName}` : `${call.peerName}, screen ${index - 1}`);
  }
}

// -- threads, mentions, search, directory ----------------------------------------------

let takeMentions = () => [];

/** Give each feature module the few parts of the page it uses. */
function installFeatures() {
  const context = {
    state, putMessage, messageElement, loadHistory, openConversation, titleOf, join,
    refreshConversations,
    members: (id) => (state.members.has(id) ? Promise.resolve(state.members.get(id)) : loadMembers(id)),
    myRole: (id) => (state.conversations.get(id) || {}).role,
  };
  installThreads(context);
  installSearch(context);
  installDirectory(context);
  takeMentions = attachMentions($("composer-input"), {
    members: () => context.members(state.current),
    myRole: () => context.myRole(state.current),
    myId: () => state.me.id,
  });
}

boot();
