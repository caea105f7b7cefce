// Messages the SDK has not sent yet (its outbox entries), shown after the sent ones with
// their state: waiting for the connection, sending, sending again after a rate limit, or
// refused, with Retry (the same client_message_id, thread and mentions) and Discard; a
// thread's replies in its panel, the others in the timeline. They are also kept in
// localStorage, so that a reload or a closed tab does not lose what the user typed, and so
// is the text of each conversation's message box not sent yet (its draft).

import { describeError } from "./errors.js";

const STORE_KEY = "hubbub.unsent";
const DRAFTS_KEY = "hubbub.drafts";

const LABELS = {
  queued: "Waiting for the connection…",
  sending: "Sending…",
  waiting: "Sending again shortly…",
  failed: "Not sent",
};

/** Replace the `li.unsent` items of `list` with one per entry. */
export function showUnsent(list, entries) {
  for (const item of list.querySelectorAll("li.unsent")) item.remove();
  for (const entry of entries) list.append(unsentElement(entry));
  list.scrollTop = list.scrollHeight;
}

function unsentElement(entry) {
  const item = document.createElement("li");
  item.className = "message mine unsent";
  item.dataset.clientMessageId = entry.clientMessageId;
  item.dataset.state = entry.state;
  const meta = document.createElement("p");
  meta.className = "meta";
  const reason = entry.state === "failed" && entry.error ? `: ${describeError(entry.error)}` : "";
  meta.textContent = `You · ${LABELS[entry.state]}${reason}`;
  const content = document.createElement("p");
  content.className = "content";
  content.textContent = entry.content;
  item.append(meta, content);
  if (entry.state === "failed") {
    for (const [action, label] of [["retry", "Retry"], ["discard", "Discard"]]) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.unsentAction = action;
      button.textContent = label;
      item.append(button);
    }
  }
  return item;
}

/** Keep `entries` (the user's unsent messages, oldest first) across reloads, with what
 * it takes to send them again: the same client_message_id, so never twice. */
export function saveUnsent(userId, entries) {
  const kept = entries.map(({ clientMessageId, conversationId, content, parentId, mentions,
                              state, error }) => ({
    clientMessageId, conversationId, content, parentId: parentId || null,
    mentions: mentions || [], failed: state === "failed",
    code: error && state === "failed" ? error.code : null,
  }));
  try {
    const all = JSON.parse(localStorage.getItem(STORE_KEY) || "{}");
    if (kept.length > 0) all[userId] = kept;
    else delete all[userId];
    localStorage.setItem(STORE_KEY, JSON.stringify(all));
  } catch {
    // Storage full or refused (private mode): the messages still wait in this page.
  }
}

/** The unsent messages a previous page of `userId` left, oldest first. */
export function loadUnsent(userId) {
  try {
    const kept = JSON.parse(localStorage.getItem(STORE_KEY) || "{}")[userId];
    return Array.isArray(kept) ? kept : [];
  } catch {
    return [];
  }
}

/** What the user has typed in a conversation's message box and not sent yet ("" none). */
export function loadDraft(userId, conversationId) {
  try {
    const drafts = JSON.parse(localStorage.getItem(DRAFTS_KEY) || "{}")[userId] || {};
    return typeof drafts[conversationId] === "string" ? drafts[conversationId] : "";
  } catch {
    return "";
  }
}

/** Keep the message box's text of a conversation ("" forgets it); `conversationId` null
 * forgets all of the user's drafts (signing out). */
export function saveDraft(userId, conversationId, text) {
  try {
    const all = JSON.parse(localStorage.getItem(DRAFTS_KEY) || "{}");
    const drafts = conversationId === null ? {} : all[userId] || {};
    if (conversationId !== null && text) drafts[conversationId] = text;
    else if (conversationId !== null) delete drafts[conversationId];
    if (Object.keys(drafts).length > 0) all[userId] = drafts;
    else delete all[userId];
    localStorage.setItem(DRAFTS_KEY, JSON.stringify(all));
  } catch {
    // Storage full or refused: the draft stays in the box meanwhile.
  }
}
