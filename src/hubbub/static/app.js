// hubbub's browser client: conversations, messages, typing, read marks, reactions and calls,
// over the public protocol only (REST §7 and /ws). No framework and no build step.
//
// Page state is exposed for tests and debugging as `window.hubbub` and as attributes:
// <body data-ws="open|closed" data-call-state="idle|ringing|active|ended">.

import { CallController } from "./call.js";
import { Api, ApiError, Socket } from "./protocol.js";

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
  socket: null,
  calls: null,
  me: null,
  conversations: new Map(), // id → conversation object (§2), the caller's view
  order: [], // conversation ids, newest activity first
  current: null, // the open conversation's id
  messages: new Map(), // conversation id → Map(message id → message object)
  paging: new Map(), // conversation id → {hasMore, nextBefore}
  versions: new Map(), // conversation id → the highest change version applied
  members: new Map(), // conversation id → [{user_id, user_name, role, online}]
  names: new Map(), // user id → display name
  joined: new Map(), // conversation id → its JoinConversation on this connection
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
  get connected() { return state.socket !== null && state.socket.isOpen; },
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

async function signIn(token) {
  $("login-error").textContent = "";
  if (!token) return;
  const api = new Api(token);
  let me;
  try {
    me = await api.get("/api/v1/users/me");
  } catch (error) {
    $("login-error").textContent = error instanceof ApiError && error.status === 401
      ? `That token was refused: ${error.message}.`
      : `Could not reach the server: ${error.message}.`;
    sessionStorage.removeItem(TOKEN_KEY);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token").value = "";
  state.api = api;
  state.me = me;
  state.names.set(me.id, me.name);
  $("me-name").textContent = me.name;
  $("me-id").textContent = me.id;
  $("whoami").hidden = false;
  $("login").hidden = true;
  $("app").hidden = false;

  const socket = new Socket(api);
  state.socket = socket;
  state.calls = new CallController(socket, { onChange: renderCall, nameOf });
  socket.addEventListener("Connected", onConnected);
  socket.addEventListener("closed", onClosed);
  socket.addEventListener("NewMessage", (e) => onMessageEvent(e.detail.message, true));
  socket.addEventListener("MessageEdited", (e) => onMessageEvent(e.detail.message, false));
  socket.addEventListener("MessageDeleted", (e) => onDeleted(e.detail));
  socket.addEventListener("ReactionAdded", (e) => onReaction(e.detail, true));
  socket.addEventListener("ReactionRemoved", (e) => onReaction(e.detail, false));
  socket.addEventListener("UserTyping", (e) => onTyping(e.detail));
  socket.addEventListener("MessageRead", (e) => onRead(e.detail));
  socket.addEventListener("UserJoined", (e) => onUserJoined(e.detail));
  socket.addEventListener("CallOffer", (e) => {
    if (!state.conversations.has(e.detail.conversation_id)) refreshConversations();
  });
  setStatus("Connecting…");
  await refreshConversations();
  try {
    await socket.open();
  } catch (error) {
    setStatus(`Could not connect: ${error.message}`);
    socket.reconnectLater();
  }
  state.listTimer = setInterval(() => refreshConversations(), LIST_REFRESH_MS);
}

function signOut() {
  if (state.calls) state.calls.hangUp();
  if (state.socket) state.socket.close();
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
  state.joined.clear();
  joinAll();
  // Whatever changed while we were away: catch up on the conversations we show.
  for (const id of state.messages.keys()) syncConversation(id);
}

function onClosed(event) {
  document.body.dataset.ws = "closed";
  state.joined.clear();
  if (event.detail.code === 4001) {
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

/** Subscribe this connection to a conversation's events (once per connection). */
function join(id) {
  const socket = state.socket;
  if (!socket || !socket.isOpen) return Promise.reject(new Error("not connected"));
  let pending = state.joined.get(id);
  if (!pending) {
    pending = socket.request("JoinConversation", { conversation_id: id });
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

async function loadHistory(id, older) {
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
    messages.set(message.id, message);
    noteVersion(id, message.version);
  }
  const conversation = state.conversations.get(id);
  if (conversation) noteVersion(id, conversation.version);
  state.paging.set(id, { hasMore: page.has_more, nextBefore: page.next_before });
  if (state.current === id) renderMessages();
}

function noteVersion(id, version) {
  if (version > (state.versions.get(id) || 0)) state.versions.set(id, version);
}

/** §2: a change event whose version skips one means we missed something: sync. */
function checkVersion(id, version) {
  if (!state.messages.has(id)) return;
  const last = state.versions.get(id) || 0;
  if (version > last + 1) syncConversation(id);
  else noteVersion(id, version);
}

async function syncConversation(id) {
  const socket = state.socket;
  if (!socket || !socket.isOpen) return;
  let since = state.versions.get(id) || 0;
  for (;;) {
    let chunk;
    try {
      chunk = await socket.request("SyncMessages", { conversation_id: id, since_version: since });
    } catch {
      await loadHistory(id, false);
      return;
    }
    for (const message of chunk.messages) putMessage(message);
    noteVersion(id, chunk.last_version);
    if (!chunk.has_more || chunk.last_version <= since) return;
    since = chunk.last_version;
  }
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
  checkVersion(id, message.version);
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
  checkVersion(event.conversation_id, event.version);
  const message = (state.messages.get(event.conversation_id) || new Map()).get(event.message_id);
  if (!message) return;
  putMessage({
    ...message, version: event.version, content: "", attachments: [], reactions: [],
    deleted_at: event.deleted_at,
  });
}

function onReaction(event, added) {
  checkVersion(event.conversation_id, event.version);
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
  const sorted = messages ? [...messages.values()].sort((a, b) => a.seq - b.seq) : [];
  list.replaceChildren(...sorted.map(messageElement));
  const paging = state.paging.get(state.current);
  $("load-older").hidden = !(paging && paging.hasMore);
  list.scrollTop = list.scrollHeight;
}

function renderMessage(message) {
  const list = $("messages");
  const element = messageElement(message);
  const existing = [...list.children].find((li) => li.dataset.messageId === message.id);
  if (existing) {
    existing.replaceWith(element);
    return;
  }
  const after = [...list.children].find((li) => Number(li.dataset.seq) > message.seq);
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
    content.textContent = message.content;
    for (const attachment of message.attachments || []) {
      const link = document.createElement("a");
      link.href = attachment.url;
      link.rel = "noopener noreferrer";
      link.target = "_blank";
      link.textContent = ` 📎 ${attachment.name}`;
      content.append(link);
    }
  }
  item.append(content);

  if (!message.deleted_at) item.append(reactionsElement(message));

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
  const button = event.target.closest("button[data-emoji]");
  if (!button) return;
  const item = button.closest("li[data-message-id]");
  const message = state.messages.get(state.current).get(item.dataset.messageId);
  const mine = message.reactions.some(
    (r) => r.emoji === button.dataset.emoji && r.user_ids.includes(state.me.id));
  state.socket.request(mine ? "RemoveReaction" : "AddReaction",
                       { message_id: message.id, emoji: button.dataset.emoji })
    .catch((error) => { $("composer-error").textContent = `Reaction failed: ${error.message}`; });
}

async function sendMessage() {
  const input = $("composer-input");
  const content = input.value.trim();
  if (!content || !state.current) return;
  $("composer-error").textContent = "";
  stopTyping();
  try {
    const reply = await state.socket.request("SendMessage", {
      conversation_id: state.current, content, client_message_id: crypto.randomUUID(),
    });
    input.value = "";
    putMessage(reply.message);
  } catch (error) {
    $("composer-error").textContent = `Not sent: ${error.message}`;
  }
}

// -- read marks ------------------------------------------------------------------------

function markRead() {
  const id = state.current;
  if (!id || document.visibilityState !== "visible" || !state.socket || !state.socket.isOpen) return;
  const messages = state.messages.get(id);
  if (!messages || messages.size === 0) return;
  const newest = [...messages.values()].reduce((a, b) => (a.seq > b.seq ? a : b));
  if (state.markedRead.get(id) === newest.id) return;
  state.markedRead.set(id, newest.id);
  state.socket.notify("MarkAsRead", { conversation_id: id, message_id: newest.id });
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
  if (!id || !state.socket || !state.socket.isOpen) return;
  const now = Date.now();
  if (now - state.typingSentAt > TYPING_REFRESH_MS) {
    state.typingSentAt = now;
    state.socket.notify("Typing", { conversation_id: id, is_typing: true });
  }
  clearTimeout(state.typingTimer);
  state.typingTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
}

function stopTyping() {
  clearTimeout(state.typingTimer);
  if (state.typingSentAt === 0 || !state.current) return;
  state.typingSentAt = 0;
  if (state.socket && state.socket.isOpen) {
    state.socket.notify("Typing", { conversation_id: state.current, is_typing: false });
  }
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

boot();
