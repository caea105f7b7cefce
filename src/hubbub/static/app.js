// hubbub's browser client: conversations, messages, typing, read marks, reactions and calls,
// over the public protocol only (REST §7 and /ws), through the JavaScript SDK (hubbub.js,
// the same file as clients/js/hubbub.js). No framework and no build step.
//
// The conversation list is fetched once per connection and then kept live by the inbox
// stream (§4.1: added, removed, summaries, read marks), which every connection hears
// without joining; only the open conversation is joined, for its full event stream. The
// SDK reconnects, re-joins and syncs, and delivers each change once in version order;
// messages not sent yet wait in its outbound queue, are kept in localStorage across
// reloads, and are shown with their state.
//
// Page state is exposed for tests and debugging as `window.hubbub` and as attributes:
// <body data-ws="open|closed" data-call-state="idle|ringing|active|ended" data-view="list|chat">.

import { CallController } from "./call.js";
import { describeCallError, describeError } from "./errors.js";
import { HubbubClient } from "./hubbub.js";
import { applySummary, faviconHref, listEntry, ordered, presenceDot, totalUnread } from "./inbox.js";
import { loadDraft, loadUnsent, saveDraft, saveUnsent, showUnsent } from "./unsent.js";
// Threads, mentions, search, image previews and the channel directory, each its own module.
import { attachmentsElement } from "./attachments.js";
import { installDirectory } from "./directory.js";
import { attachMentions, contentNodes, mentionsMe } from "./mentions.js";
import { installSearch } from "./search.js";
import { closeThreadUnlessOf, installThreads, renderThreadUnsent, showReply, threadFooter }
  from "./thread.js";

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
// Signing in when the server cannot be reached (restarting, or the network is down) is
// tried again this often, keeping the token: the unsent messages wait meanwhile.
const SIGN_IN_RETRY_MS = 2000;
// The members shown in a group's header, with their presence.
const MEMBERS_SHOWN = 12;
const TOKEN_KEY = "hubbub.token";

const state = {
  api: null,
  client: null,
  calls: null,
  me: null,
  conversations: new Map(), // id → conversation object (§2), the caller's view
  order: [], // conversation ids: pinned first, then newest activity first
  current: null, // the open (and only joined) conversation's id
  gone: null, // {id, title}: the open conversation's membership ended
  messages: new Map(), // conversation id → Map(message id → message object)
  paging: new Map(), // conversation id → {hasMore, nextBefore}
  unsent: new Map(), // client_message_id → the SDK's outbox entry, until it is sent
  members: new Map(), // conversation id → [{user_id, user_name, role, accepted, online}]
  names: new Map(), // user id → display name
  joined: new Map(), // conversation id → its JoinConversation (the SDK re-joins)
  typing: new Map(), // conversation id → Map(user id → {name, until})
  readBy: new Map(), // conversation id → Map(user id → message id)
  markedRead: new Map(), // conversation id → message id we last marked read
  addedMeanwhile: null, // ids the inbox added while the list was being fetched
  editing: null, // the id of the own message being edited in place
  deleting: null, // the id of the own message whose deletion awaits confirmation
  listPending: false, // a redraw of the list is scheduled
  typingSentAt: 0,
  typingTimer: null,
  callTitle: null,
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
  $("start-one").addEventListener("click", () => {
    $("new-conversation").open = true;
    $("new-kind").focus();
  });
  $("new-kind").addEventListener("change", () => {
    $("new-name").disabled = $("new-kind").value === "direct";
  });
  $("new-conversation-form").addEventListener("submit", createConversation);
  $("conversation-list").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-conversation-id]");
    if (button) openConversation(button.dataset.conversationId);
  });
  $("back").addEventListener("click", closeConversation);
  $("toggle-mute").addEventListener("click", () => updateSettings({ muted: !currentConversation().muted }));
  $("toggle-pin").addEventListener("click", () => updateSettings({ pinned: !currentConversation().pinned }));
  $("leave").addEventListener("click", () => { $("leave-confirm").hidden = false; $("leave-yes").focus(); });
  $("leave-no").addEventListener("click", () => { $("leave-confirm").hidden = true; });
  $("leave-yes").addEventListener("click", leaveConversation);
  $("load-older").addEventListener("click", () => loadHistory(state.current, true));
  $("messages").addEventListener("click", onMessageClick);
  $("messages").addEventListener("keydown", onEditKey);
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
  $("composer-input").addEventListener("input", () => {
    if (state.current) saveDraft(state.me.id, state.current, $("composer-input").value);
    onTypingInput();
  });
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
  document.addEventListener("visibilitychange", () => {
    markRead();
    updateTitle(); // the open conversation counts in the title while the tab is hidden
  });
  document.body.dataset.view = "list";
  updateTitle();

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
    patch: (path, body) => client.http("PATCH", path, body),
    delete: (path) => client.http("DELETE", path),
  };
  let me;
  try {
    me = await api.get("/api/v1/users/me");
  } catch (error) {
    if (error.code === "UNAUTHORIZED") {
      $("login-error").textContent = "That token was refused: check it, or paste a new one.";
      sessionStorage.removeItem(TOKEN_KEY);
      return;
    }
    // Not reached (a restart, the network): the same token is tried again shortly.
    sessionStorage.setItem(TOKEN_KEY, token);
    $("login-error").textContent = "Could not reach the server: trying again…";
    setTimeout(() => { if (sessionStorage.getItem(TOKEN_KEY) === token) signIn(token); },
               SIGN_IN_RETRY_MS);
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
  client.on("PresenceChanged", onPresence);
  // The inbox (§4.1): the whole list, live, without joining.
  client.on("ConversationAdded", (m) => onConversationAdded(m.conversation));
  client.on("ConversationRemoved", (m) => onConversationRemoved(m.conversation_id));
  client.on("ConversationSummary", onSummary);
  client.on("ReadStateChanged", onReadState);
  client.on("MembershipUpdated", onMembershipUpdated);
  restoreUnsent();
  installFeatures();
  setStatus("Connecting…");
  client.connect().catch(() => {}); // a refused token shows through onState
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
  // Signing out leaves nothing of the user's behind (a shared computer): no unsent message,
  // no draft.
  if (state.me) {
    saveUnsent(state.me.id, []);
    saveDraft(state.me.id, null, "");
  }
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
  // Whatever the inbox said while this page was offline is in the list's answer. The SDK
  // re-joins and syncs the open conversation; this joins it if it could not be, offline.
  loadConversations();
  if (state.current && !state.gone) join(state.current).catch(() => {});
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

// -- the conversation list (the inbox) -------------------------------------------------

/** The list as the server has it now (§7), merged with what the inbox added meanwhile. */
async function loadConversations() {
  const meanwhile = new Set();
  state.addedMeanwhile = meanwhile;
  let body;
  try {
    body = await state.api.get("/api/v1/conversations");
  } catch (error) {
    setStatus(`Could not load your conversations. ${describeError(error)}`);
    return;
  } finally {
    if (state.addedMeanwhile === meanwhile) state.addedMeanwhile = null;
  }
  const listed = new Set(body.conversations.map((conversation) => conversation.id));
  for (const id of [...state.conversations.keys()]) {
    if (!listed.has(id) && !meanwhile.has(id)) forget(id);
  }
  for (const conversation of body.conversations) remember(conversation);
  renderList();
}

/** Keep a conversation object (the caller's view), loading a direct one's members for
 * its title and presence. */
function remember(conversation) {
  const known = state.conversations.get(conversation.id);
  state.conversations.set(conversation.id, { ...known, ...conversation });
  if (conversation.kind === "direct" && !state.members.has(conversation.id)) {
    loadMembers(conversation.id).then(renderList);
  }
  if (state.gone && state.gone.id === conversation.id) {
    // Added again while it was open: joined afresh, with the history missed meanwhile.
    state.messages.delete(conversation.id);
    state.paging.delete(conversation.id);
    openConversation(conversation.id);
  }
}

function forget(id) {
  state.conversations.delete(id);
  if (state.current === id && !state.gone) {
    state.gone = { id };
    showConversation();
    if (isOpen()) state.client.leave(id).catch(() => {});
    state.joined.delete(id);
  }
}

function onConversationAdded(conversation) {
  if (state.addedMeanwhile) state.addedMeanwhile.add(conversation.id);
  remember(conversation);
  renderList();
}

function onConversationRemoved(id) {
  forget(id);
  renderList();
}

function onSummary(summary) {
  const conversation = state.conversations.get(summary.conversation_id);
  if (!conversation) return;
  applySummary(conversation, summary);
  renderList();
}

function onReadState(event) {
  const conversation = state.conversations.get(event.conversation_id);
  if (!conversation) return;
  conversation.unread_count = event.unread_count;
  conversation.mention_count = event.mention_count;
  renderList();
}

function onMembershipUpdated(event) {
  const conversation = state.conversations.get(event.conversation_id);
  if (!conversation) return;
  conversation.muted = event.muted;
  conversation.pinned = event.pinned;
  renderList();
}

function onPresence(event) {
  const online = event.status === "online";
  for (const members of state.members.values()) {
    for (const member of members) {
      // A member who has not accepted shows no presence there (§4).
      if (member.user_id === event.user_id && member.accepted !== false) member.online = online;
    }
  }
  renderList();
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

/** Unsubscribe from a conversation no longer open; its messages are fetched again when it
 * is opened next (the inbox keeps its list entry live meanwhile). */
function unjoin(id) {
  if (!state.joined.has(id)) return;
  state.joined.delete(id);
  state.messages.delete(id);
  state.paging.delete(id);
  state.markedRead.delete(id);
  if (isOpen()) state.client.leave(id).catch(() => {});
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

/** The other member of a direct conversation, when its members are known. */
function peerOf(conversation) {
  if (conversation.kind !== "direct") return null;
  return (state.members.get(conversation.id) || [])
    .find((member) => member.user_id !== state.me.id) || null;
}

function titleOf(conversation) {
  if (conversation.kind !== "direct") {
    return (conversation.kind === "channel" ? "#" : "") + conversation.name;
  }
  const peer = peerOf(conversation);
  return peer ? peer.user_name : "Direct conversation";
}

function currentConversation() {
  return state.conversations.get(state.current) || {};
}

/** Redraw the list soon, once for however many inbox events arrive meanwhile (a busy
 * user's summaries come many a second). */
function renderList() {
  if (state.listPending) return;
  state.listPending = true;
  setTimeout(() => {
    state.listPending = false;
    drawList();
  }, 0);
}

function drawList() {
  state.order = ordered(state.conversations);
  $("conversation-list").replaceChildren(...state.order.map((id) => {
    const conversation = state.conversations.get(id);
    const peer = peerOf(conversation);
    return listEntry(conversation, {
      title: titleOf(conversation),
      open: id === state.current && document.body.dataset.view === "chat",
      online: peer ? Boolean(peer.online) : null,
      meId: state.me.id,
    });
  }));
  $("no-conversations").hidden = state.order.length > 0;
  if (state.current) renderHeader();
  updateTitle();
}

/** The tab's title and icon: the total unread, e.g. "(3) hubbub"; a ringing call first. */
function updateTitle() {
  const unread = state.me ? totalUnread(state.conversations, viewing()) : 0;
  const base = state.callTitle || "hubbub";
  document.title = unread > 0 ? `(${unread}) ${base}` : base;
  const icon = $("favicon");
  const href = unread > 0 ? faviconHref(unread) : "static/favicon.svg";
  if (icon.getAttribute("href") !== href) icon.setAttribute("href", href);
}

/** The conversation the user is reading now: open, and the tab visible. */
function viewing() {
  return document.visibilityState === "visible" ? state.current : null;
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
    $("new-error").textContent = error.code === "BAD_REQUEST"
      ? "Check the fields: a direct conversation takes one member id, a group or channel a name."
      : describeError(error);
    return;
  }
  $("new-conversation-form").reset();
  $("new-name").disabled = true;
  $("new-conversation").open = false;
  remember(conversation);
  if (conversation.kind === "direct") await loadMembers(conversation.id);
  renderList();
  openConversation(conversation.id);
}

// -- the open conversation -------------------------------------------------------------

async function openConversation(id) {
  const focusedBefore = document.activeElement;
  stopTyping();
  if (state.current && state.current !== id) unjoin(state.current);
  closeThreadUnlessOf(id); // another conversation's thread has no place here
  state.current = id;
  state.gone = null;
  state.editing = null;
  state.deleting = null;
  document.body.dataset.view = "chat";
  showConversation();
  $("composer-input").value = loadDraft(state.me.id, id);
  renderMessages();
  renderTyping();
  loadMembers(id).then(() => {
    if (state.current === id) {
      renderCallTargets();
      renderList();
    }
  });
  // Subscribed first, then the history: nothing sent in between can fall through. Events
  // and sends confirmed while the history loads are kept, and merged with it by version.
  if (!state.messages.has(id)) state.messages.set(id, new Map());
  await join(id).catch(() => {});
  if (!state.paging.has(id)) await loadHistory(id, false);
  markRead();
  if (state.current === id && !focusMovedToAField(focusedBefore)) $("composer-input").focus();
}

/** Whether the user went into another field (the search box, say) while a conversation
 * opened: its history loads first, and typing there must not end up in the composer. */
function focusMovedToAField(before) {
  const now = document.activeElement;
  return now !== before && now !== $("composer-input") && now instanceof Element
    && now.matches("input, textarea, select");
}

/** Back to the list (the phone layout's two screens): nothing is open or joined. */
function closeConversation() {
  stopTyping();
  closeThreadUnlessOf(null);
  if (state.current) unjoin(state.current);
  state.current = null;
  state.gone = null;
  document.body.dataset.view = "list";
  showConversation();
  $("messages").replaceChildren();
  renderList();
}

/** The header and composer of the open conversation (or of none, or of one left). */
function showConversation() {
  const open = state.current !== null;
  const gone = state.gone !== null;
  $("composer").hidden = !open || gone;
  $("call-controls").hidden = !open || gone;
  $("settings").hidden = !open || gone;
  $("gone").hidden = !gone;
  $("leave-confirm").hidden = true;
  $("settings-error").textContent = "";
  $("composer-error").textContent = "";
  if (!open) {
    $("chat-title").textContent = "No conversation open";
    $("chat-members").replaceChildren();
    $("no-messages").hidden = true;
    return;
  }
  renderHeader();
}

function renderHeader() {
  const conversation = state.conversations.get(state.current);
  if (!conversation) return; // left: the header keeps its last title
  $("chat-title").textContent = titleOf(conversation);
  $("toggle-mute").textContent = conversation.muted ? "Unmute conversation" : "Mute conversation";
  $("toggle-mute").setAttribute("aria-pressed", String(Boolean(conversation.muted)));
  $("toggle-pin").textContent = conversation.pinned ? "Unpin" : "Pin";
  $("toggle-pin").setAttribute("aria-pressed", String(Boolean(conversation.pinned)));
  const members = state.members.get(state.current) || [];
  const shown = conversation.kind === "direct"
    ? members.filter((member) => member.user_id !== state.me.id)
    : members.filter((member) => member.role !== "banned").slice(0, MEMBERS_SHOWN);
  $("chat-members").replaceChildren(...shown.map((member) => {
    const item = document.createElement("li");
    item.dataset.userId = member.user_id;
    const label = member.user_id === state.me.id ? "You" : member.user_name;
    item.append(presenceDot(Boolean(member.online)), ` ${label}`);
    if (conversation.kind === "direct") item.append(member.online ? " · online" : " · offline");
    return item;
  }));
}

/** Mute or pin (§7 PATCH …/membership): the list, and the user's other devices, follow. */
async function updateSettings(change) {
  const id = state.current;
  $("settings-error").textContent = "";
  try {
    const conversation = await state.api.patch(`/api/v1/conversations/${id}/membership`, change);
    const known = state.conversations.get(id);
    if (known) {
      known.muted = conversation.muted;
      known.pinned = conversation.pinned;
    }
    renderList();
  } catch (error) {
    $("settings-error").textContent = describeError(error);
  }
}

/** Leave for good (§7 DELETE …/members/{me}): the inbox removes it on every device. */
async function leaveConversation() {
  const id = state.current;
  $("leave-confirm").hidden = true;
  try {
    await state.api.delete(`/api/v1/conversations/${id}/members/${encodeURIComponent(state.me.id)}`);
  } catch (error) {
    $("settings-error").textContent = error.code === "CONFLICT"
      ? "You are its last owner: make someone else an owner before leaving."
      : describeError(error);
    return;
  }
  state.conversations.delete(id);
  closeConversation();
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
    if (state.current === id) {
      $("composer-error").textContent = `Could not load the messages. ${describeError(error)}`;
    }
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
  // Counts come from the inbox's summaries; the preview moves here at once.
  const conversation = state.conversations.get(id);
  if (isNew && conversation) {
    const last = conversation.last_message;
    if (!last || Date.parse(last.created_at) <= Date.parse(message.created_at)) {
      conversation.last_message = message;
      renderList();
    }
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
  const loaded = state.paging.has(state.current);
  $("no-messages").hidden = !(loaded && sorted.length === 0 && !state.gone)
    || list.querySelector("li.unsent") !== null;
  const paging = state.paging.get(state.current);
  $("load-older").hidden = !(paging && paging.hasMore);
  list.scrollTop = list.scrollHeight;
}

function renderMessage(message) {
  if (message.parent_id) return; // a thread's reply: shown in its thread (thread.js)
  const list = $("messages");
  const element = messageElement(message);
  const existing = [...list.children].find((li) => li.dataset.messageId === message.id);
  $("no-messages").hidden = true;
  if (existing) {
    // An edit in progress keeps what was typed through a reaction or a read mark.
    const typed = existing.querySelector("textarea.edit-input");
    const box = element.querySelector("textarea.edit-input");
    if (typed && box) box.value = typed.value;
    existing.replaceWith(element);
    return;
  }
  const after = [...list.children].find(
    (li) => li.classList.contains("unsent") || Number(li.dataset.seq) > message.seq);
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.insertBefore(element, after || null);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

/** One message as the list shows it (exported: threads and search show messages too). */
export function messageElement(message) {
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

  if (state.editing === message.id && !message.deleted_at) {
    item.append(editForm(message));
    return item;
  }
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
  if (mine && !system && !message.deleted_at) item.append(ownActions(message));
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

/** Edit and Delete on one's own message; Delete asks first. */
function ownActions(message) {
  const group = document.createElement("div");
  group.className = "own-actions";
  const actions = state.deleting === message.id
    ? [["confirm-delete", "Delete", "bad"], ["keep", "Keep", ""]]
    : [["edit", "Edit", ""], ["delete", "Delete", ""]];
  if (state.deleting === message.id) {
    const question = document.createElement("span");
    question.textContent = "Delete this message?";
    group.append(question);
  }
  for (const [action, label, kind] of actions) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = `small ${kind}`.trim();
    button.dataset.messageAction = action;
    button.textContent = label;
    group.append(button);
  }
  return group;
}

/** The message's text in place, editable: Enter (or Save) saves, Escape cancels. */
function editForm(message) {
  const form = document.createElement("div");
  form.className = "edit";
  const box = document.createElement("textarea");
  box.className = "edit-input";
  box.rows = 2;
  box.maxLength = 4000;
  box.value = message.content;
  box.setAttribute("aria-label", "Edit message");
  form.append(box);
  for (const [action, label] of [["save", "Save"], ["cancel", "Cancel"]]) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "small";
    button.dataset.messageAction = action;
    button.textContent = label;
    form.append(button);
  }
  return form;
}

function onEditKey(event) {
  if (!event.target.classList.contains("edit-input")) return;
  const item = event.target.closest("li[data-message-id]");
  if (event.key === "Escape") {
    event.preventDefault();
    ownAction(item, "cancel");
  } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ownAction(item, "save");
  }
}

async function ownAction(item, action) {
  const message = state.messages.get(state.current).get(item.dataset.messageId);
  if (!message) return;
  $("composer-error").textContent = "";
  state.editing = action === "edit" ? message.id : null;
  state.deleting = action === "delete" ? message.id : null;
  if (action === "save") {
    const content = item.querySelector("textarea.edit-input").value.trim();
    if (content && content !== message.content) {
      try {
        putMessage(await state.client.edit(message.id, content));
      } catch (error) {
        $("composer-error").textContent = `The edit was not saved. ${describeError(error)}`;
      }
    }
  } else if (action === "confirm-delete") {
    try {
      await state.client.delete(message.id);
    } catch (error) {
      $("composer-error").textContent = `The message was not deleted. ${describeError(error)}`;
    }
  }
  const current = state.messages.get(state.current);
  if (current && current.has(message.id)) renderMessage(current.get(message.id));
  if (action === "edit") {
    const box = $("messages").querySelector(`li[data-message-id="${message.id}"] textarea`);
    if (box) box.focus();
  }
}

function onMessageClick(event) {
  const retry = event.target.closest("button[data-unsent-action]");
  if (retry) {
    onUnsentClick(retry);
    return;
  }
  const own = event.target.closest("button[data-message-action]");
  if (own) {
    ownAction(own.closest("li[data-message-id]"), own.dataset.messageAction);
    return;
  }
  const button = event.target.closest("button[data-emoji]");
  if (!button) return;
  const item = button.closest("li[data-message-id]");
  const message = state.messages.get(state.current).get(item.dataset.messageId);
  const mine = message.reactions.some(
    (r) => r.emoji === button.dataset.emoji && r.user_ids.includes(state.me.id));
  state.client.react(message.id, button.dataset.emoji, { remove: mine })
    .catch((error) => {
      $("composer-error").textContent = `The reaction was not saved. ${describeError(error)}`;
    });
}

/** Queue the message in the SDK: it is sent when connected, retried through rate limits
 * and reconnects with the same client_message_id; until then it shows as unsent. */
function sendMessage() {
  const input = $("composer-input");
  const content = input.value.trim();
  if (!content || !state.current || state.gone) return;
  $("composer-error").textContent = "";
  stopTyping();
  input.value = "";
  saveDraft(state.me.id, state.current, "");
  deliver({ conversationId: state.current, content, clientMessageId: crypto.randomUUID(),
            mentions: takeMentions(content) });
}

/** Hand a message (a thread's reply with `parentId`) to the SDK's queue; sending it again
 * passes the same `clientMessageId`, `parentId` and `mentions`, so it is the same message. */
function deliver({ conversationId, content, clientMessageId, parentId = null, mentions = [] }) {
  state.client.send(conversationId, content, { clientMessageId, parentId, mentions })
    .then((message) => {
      putMessage(message);
      showReply(message);
    }, () => {}); // a refusal stays in view as a failed entry
}

function onOutbox(entry) {
  if (entry.state === "sent") state.unsent.delete(entry.clientMessageId);
  else state.unsent.set(entry.clientMessageId, entry);
  keepUnsent();
  if (entry.conversationId !== state.current) return;
  if (entry.parentId) renderThreadUnsent();
  else renderUnsent();
}

/** The unsent messages of a conversation's timeline (`parentId` null) or of a thread. */
function unsentOf(conversationId, parentId = null) {
  return [...state.unsent.values()].filter(
    (entry) => entry.conversationId === conversationId && (entry.parentId || null) === parentId);
}

function keepUnsent() {
  saveUnsent(state.me.id, [...state.unsent.values()]);
}

/** What an earlier page of this user left unsent: queued again, in order, with the same
 * client_message_id (stored already? then not twice); a refused one waits for Retry. */
function restoreUnsent() {
  for (const kept of loadUnsent(state.me.id)) {
    const send = {
      clientMessageId: kept.clientMessageId, conversationId: kept.conversationId,
      content: kept.content, parentId: kept.parentId || null, mentions: kept.mentions || [],
    };
    if (kept.failed) {
      state.unsent.set(kept.clientMessageId, {
        ...send, state: "failed", attempts: 0,
        error: { code: kept.code || "INTERNAL_ERROR" }, message: null,
      });
    } else {
      deliver(send);
    }
  }
  keepUnsent();
}

/** The current conversation's unsent messages, after the sent ones, with their state. */
function renderUnsent() {
  const entries = unsentOf(state.current);
  showUnsent($("messages"), entries);
  if (entries.length > 0) $("no-messages").hidden = true;
}

/** Retry or Discard on an unsent message, of the timeline or of a thread. */
function onUnsentClick(button) {
  const id = button.closest("li.unsent").dataset.clientMessageId;
  const entry = state.unsent.get(id);
  if (!entry) return;
  state.unsent.delete(id);
  keepUnsent();
  // The same client_message_id: were it stored after all, it is not stored twice.
  if (button.dataset.unsentAction === "retry") deliver(entry);
  else if (entry.parentId) renderThreadUnsent();
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
    $("call-status").textContent = describeCallError(error);
  }
}

async function mediaAction(action) {
  try {
    await action();
  } catch (error) {
    $("call-status").textContent = describeCallError(error);
  }
}


function renderCall(call) {
  const section = $("call");
  document.body.dataset.callState = call ? call.state : "idle";
  section.hidden = call === null;
  renderCallTargets();
  if (!call) {
    delete section.dataset.callId;
    state.callTitle = null;
    updateTitle();
    return;
  }
  section.dataset.callId = call.id;
  section.dataset.connection = call.pc ? call.pc.connectionState : "new";
  $("call-title").textContent = `${call.type === "video" ? "Video" : "Audio"} call with ${call.peerName}`;
  $("call-status").textContent = call.status;
  const ringingIn = call.state === "ringing" && call.role === "callee";
  state.callTitle = ringingIn ? "Incoming call – hubbub" : null;
  updateTitle();
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
    deliver, unsentOf, onUnsentClick,
    // Joining a channel adds it to the list by the inbox stream (ConversationAdded); the
    // directory reloads the list too, for a server with HUBBUB_INBOX=off.
    refreshConversations: loadConversations,
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
