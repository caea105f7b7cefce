// Threads (PROTOCOL.md §2 `parent_id`, `reply_count`, `last_reply_at`; §3 FetchHistory with
// `parent_id`; §4 `ThreadUpdated`): "Reply in thread" on a message opens a panel (at the
// side on a desktop, the whole screen on a phone) with the parent and its replies, paged
// back with the history's cursor, live as replies arrive; the parent's "N replies · last
// reply at" line follows `ThreadUpdated`. Replies stay out of the main timeline; one not
// sent yet shows after the thread's replies with its state and Retry, as in the timeline.

import { h, shortTime } from "./dom.js";
import { describeError } from "./errors.js";
import { attachMentions } from "./mentions.js";
import { showUnsent } from "./unsent.js";

const PAGE_SIZE = 50;

let ui = null;
const thread = {
  conversationId: null,
  parentId: null,
  replies: new Map(), // message id → message
  hasMore: false,
  nextBefore: null,
  takeMentions: () => [],
};

/** Set the panel up. `context`: {state, putMessage, messageElement, members, myRole,
 * deliver, unsentOf, onUnsentClick} (app.js). */
export function installThreads(context) {
  ui = context;
  const panel = panelElement();
  document.getElementById("app").append(panel);
  document.getElementById("messages").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-thread-open]");
    if (button) openThread(ui.state.current, button.dataset.threadOpen);
  });
  document.getElementById("thread-replies").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-unsent-action]");
    if (button) ui.onUnsentClick(button);
  });
  const client = ui.state.client;
  client.on("NewMessage", (m) => showReply(m.message));
  client.on("MessageSynced", (m) => showReply(m.message));
  client.on("MessageEdited", (m) => showReply(m.message));
  client.on("MessageDeleted", onReplyDeleted);
  client.on("ThreadUpdated", onThreadUpdated);
  thread.takeMentions = attachMentions(document.getElementById("thread-input"), {
    members: () => ui.members(thread.conversationId),
    myRole: () => ui.myRole(thread.conversationId),
    myId: () => ui.state.me.id,
  });
}

/** The thread line under a message in the timeline: its replies, and the action. */
export function threadFooter(message) {
  const count = message.reply_count || 0;
  if (message.kind === "system" || (message.deleted_at && count === 0)) return null;
  const footer = h("div", { class: "thread-footer" });
  if (count > 0) {
    const last = message.last_reply_at ? ` · last reply ${shortTime(message.last_reply_at)}` : "";
    footer.append(h("button", {
      type: "button", class: "thread-replies", dataset: { threadOpen: message.id },
      text: `${count} ${count === 1 ? "reply" : "replies"}${last}`,
    }));
  }
  if (!message.deleted_at) {
    footer.append(h("button", {
      type: "button", class: "thread-open", dataset: { threadOpen: message.id },
      "aria-label": `Reply in thread to ${message.sender_name || "this message"}`,
      text: "Reply in thread",
    }));
  }
  return footer;
}

/** Open the thread of `parentId` in `conversationId` (its parent is in the timeline). */
export async function openThread(conversationId, parentId) {
  const switched = thread.parentId !== parentId;
  thread.conversationId = conversationId;
  thread.parentId = parentId;
  document.body.dataset.thread = "open";
  document.getElementById("thread").hidden = false;
  if (switched) {
    thread.replies = new Map();
    thread.hasMore = false;
    thread.nextBefore = null;
    render();
    await loadReplies(false);
  }
  document.getElementById("thread-input").focus();
}

/** The open thread's parent id (null when closed), for search's jump. */
export function openThreadId() {
  return document.body.dataset.thread === "open" ? thread.parentId : null;
}

/** Load older replies until `messageId` is among them (or none are left); whether it is. */
export async function loadReplyUntil(messageId) {
  while (!thread.replies.has(messageId) && thread.hasMore) {
    if (!(await loadReplies(true))) return false;
  }
  return thread.replies.has(messageId);
}

/** Close the panel if its thread is not of `conversationId` (null: whichever it is). */
export function closeThreadUnlessOf(conversationId) {
  if (openThreadId() === null || thread.conversationId === conversationId) return;
  thread.parentId = null;
  delete document.body.dataset.thread;
  document.getElementById("thread").hidden = true;
}

export function closeThread() {
  const parentId = thread.parentId;
  thread.parentId = null;
  delete document.body.dataset.thread;
  document.getElementById("thread").hidden = true;
  // Back where the thread was opened from, for the keyboard.
  const origin = document.querySelector(`#messages li[data-message-id="${parentId}"] .thread-open`);
  if (origin) origin.focus();
}

function panelElement() {
  const input = h("textarea", { id: "thread-input", rows: 2, maxlength: 4000 });
  const form = h("form", { id: "thread-composer", onsubmit: (event) => {
    event.preventDefault();
    sendReply();
  } },
  h("label", { for: "thread-input", text: "Reply" }), input,
  h("button", { type: "submit", text: "Send reply" }),
  h("p", { id: "thread-error", class: "error", role: "alert" }));
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendReply();
    }
  });
  const closeOnEscape = (event) => {
    if (event.key === "Escape") closeThread();
  };
  return h("aside", { id: "thread", "aria-labelledby": "thread-title", hidden: true,
                      onkeydown: closeOnEscape },
    h("div", { class: "row" },
      h("h2", { id: "thread-title", text: "Thread" }),
      h("button", { type: "button", id: "thread-close", onclick: closeThread,
                    "aria-label": "Close the thread", text: "Close" })),
    h("div", { id: "thread-parent" }),
    h("button", { type: "button", id: "thread-older", hidden: true,
                  onclick: () => loadReplies(true), text: "Load older replies" }),
    h("ol", { id: "thread-replies", "aria-label": "Replies", "aria-live": "polite",
              "aria-relevant": "additions" }),
    form);
}

async function loadReplies(older) {
  const { conversationId, parentId } = thread;
  const params = new URLSearchParams({ limit: String(PAGE_SIZE), parent_id: parentId });
  if (older && thread.nextBefore !== null) params.set("before", String(thread.nextBefore));
  let page;
  try {
    page = await ui.state.api.get(`/api/v1/conversations/${conversationId}/messages?${params}`);
  } catch (error) {
    document.getElementById("thread-error").textContent = `Could not load replies: ${describeError(error)}`;
    return false;
  }
  if (thread.parentId !== parentId) return false; // another thread was opened meanwhile
  for (const message of page.messages) keep(message);
  thread.hasMore = page.has_more;
  thread.nextBefore = page.next_before;
  render();
  return true;
}

function keep(message) {
  const known = thread.replies.get(message.id);
  if (!known || known.version <= message.version) thread.replies.set(message.id, message);
}

function render() {
  const parent = (ui.state.messages.get(thread.conversationId) || new Map()).get(thread.parentId);
  document.getElementById("thread-parent").replaceChildren(
    parent ? panelMessage(parent) : h("p", { class: "hint", text: "The message is not loaded." }));
  const sorted = [...thread.replies.values()].sort((a, b) => a.seq - b.seq);
  const list = document.getElementById("thread-replies");
  list.replaceChildren(...sorted.map(panelMessage));
  renderThreadUnsent();
  document.getElementById("thread-older").hidden = !thread.hasMore;
}

/** The open thread's replies not sent yet, after its sent ones, with their state. */
export function renderThreadUnsent() {
  if (openThreadId() === null) return;
  showUnsent(document.getElementById("thread-replies"),
             ui.unsentOf(thread.conversationId, thread.parentId));
}

/** A message as the timeline shows it, without the timeline's own actions. */
function panelMessage(message) {
  const element = ui.messageElement(message);
  for (const part of element.querySelectorAll(".reactions, .thread-footer")) part.remove();
  return element;
}

/** A reply (heard, or the user's own confirmed), into the panel if its thread is open. */
export function showReply(message) {
  if (!message.parent_id || message.parent_id !== thread.parentId) return;
  keep(message);
  render();
}

function onReplyDeleted(event) {
  const known = thread.replies.get(event.message_id);
  if (!known) return;
  keep({ ...known, version: event.version, content: "", attachments: [], reactions: [],
         deleted_at: event.deleted_at });
  render();
}

function onThreadUpdated(event) {
  const parent = (ui.state.messages.get(event.conversation_id) || new Map()).get(event.message_id);
  if (!parent) return;
  ui.putMessage({ ...parent, version: event.version, reply_count: event.reply_count,
                  last_reply_at: event.last_reply_at });
  if (event.message_id === thread.parentId) render();
}

function sendReply() {
  const input = document.getElementById("thread-input");
  const content = input.value.trim();
  if (!content || !thread.parentId) return;
  document.getElementById("thread-error").textContent = "";
  input.value = "";
  ui.deliver({ conversationId: thread.conversationId, content, parentId: thread.parentId,
               clientMessageId: crypto.randomUUID(), mentions: thread.takeMentions(content) });
}
