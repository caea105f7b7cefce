// The conversation list, kept live by the inbox stream (PROTOCOL.md §4.1) without joining:
// its order, the badges, the total for the tab's title and icon, and one list entry.
// Pure functions over the conversation objects (§2) the app keeps; app.js wires the events.

const FAVICON_PATH = "M14 18h36a4 4 0 0 1 4 4v18a4 4 0 0 1-4 4H30l-10 8v-8h-6a4 4 0 0 1-4-4V22a4 4 0 0 1 4-4z";

/** When the conversation last saw activity: its newest message, else its creation. */
function activity(conversation) {
  const last = conversation.last_message;
  return Date.parse((last && last.created_at) || conversation.created_at || 0) || 0;
}

/** Conversation ids as the list shows them: pinned first, then newest activity first. */
export function ordered(conversations) {
  return [...conversations.values()]
    .sort((a, b) => (Number(Boolean(b.pinned)) - Number(Boolean(a.pinned)))
      || activity(b) - activity(a))
    .map((conversation) => conversation.id);
}

/** A `ConversationSummary` applied to its conversation: the state at that moment (they
 * reach a connection in order, so the latest one is the truth). */
export function applySummary(conversation, summary) {
  conversation.last_message = summary.last_message;
  conversation.unread_count = summary.unread_count;
  conversation.mention_count = summary.mention_count || 0;
  if (typeof summary.muted === "boolean") conversation.muted = summary.muted;
}

/** The unread count the tab shows: every conversation's but the muted ones' (they keep
 * their badge, quietly) and the open one's, which the user is reading. */
export function totalUnread(conversations, currentId) {
  let total = 0;
  for (const conversation of conversations.values()) {
    if (conversation.id === currentId || conversation.muted) continue;
    total += conversation.unread_count || 0;
  }
  return total;
}

/** The tab's icon: the page's speech bubble, with the unread count on a red disc. */
export function faviconHref(unread) {
  const badge = unread <= 0 ? "" : `<circle cx="46" cy="46" r="18" fill="#b3261e"/>`
    + `<text x="46" y="53" font-size="${unread > 99 ? 16 : 22}" text-anchor="middle" `
    + `font-family="sans-serif" font-weight="700" fill="#fff">${unread > 99 ? "99+" : unread}</text>`;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">`
    + `<rect width="64" height="64" rx="14" fill="#0b57d0"/><path d="${FAVICON_PATH}" fill="#fff"/>`
    + `${badge}</svg>`;
  return `data:image/svg+xml,${encodeURIComponent(svg)}`;
}

/** A presence dot: `online` true, false, or null (not known: nothing is shown). */
export function presenceDot(online) {
  const dot = document.createElement("span");
  dot.className = "presence";
  dot.dataset.online = String(online);
  dot.setAttribute("role", "img");
  dot.setAttribute("aria-label", online ? "online" : "offline");
  dot.title = online ? "Online" : "Offline";
  return dot;
}

/** One list entry: title, presence (direct), preview, and the unread and mention badges,
 * quieter when muted; `open`: the conversation on screen, whose unread the user is reading. */
export function listEntry(conversation, { title, open, online, meId }) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "conversation";
  button.dataset.conversationId = conversation.id;
  if (conversation.muted) button.dataset.muted = "true";
  if (conversation.pinned) button.dataset.pinned = "true";
  if (open) button.setAttribute("aria-current", "true");

  const head = document.createElement("span");
  head.className = "conversation-title";
  if (online !== null) head.append(presenceDot(online));
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = title;
  head.append(name);
  if (conversation.pinned) head.append(marker("pin", "📌", "pinned"));
  if (conversation.muted) head.append(marker("mute", "🔕", "muted"));

  const preview = document.createElement("span");
  preview.className = "preview";
  const last = conversation.last_message;
  if (!last) preview.textContent = "No messages yet";
  else if (last.kind === "system") preview.textContent = last.content;
  else preview.textContent = `${last.sender_id === meId ? "You" : last.sender_name}: ${last.content || "…"}`;

  const text = document.createElement("span");
  text.className = "text";
  text.append(head, preview);
  button.append(text);

  const badges = document.createElement("span");
  badges.className = "badges";
  const unread = open ? 0 : conversation.unread_count || 0;
  const mentions = open ? 0 : conversation.mention_count || 0;
  if (mentions > 0) {
    const at = badge("mention", "@", `${mentions} unread mention${mentions === 1 ? "" : "s"}`);
    badges.append(at);
  }
  if (unread > 0) {
    const count = unread >= 1000 ? "999+" : String(unread);
    badges.append(badge(conversation.muted ? "unread quiet" : "unread", count, `${unread} unread`));
  }
  button.append(badges);
  const item = document.createElement("li");
  item.append(button);
  return item;
}

function badge(kind, text, label) {
  const element = document.createElement("span");
  element.className = `badge ${kind}`;
  element.textContent = text;
  element.setAttribute("aria-label", label);
  return element;
}

function marker(kind, symbol, label) {
  const element = document.createElement("span");
  element.className = `marker ${kind}`;
  element.textContent = symbol;
  element.setAttribute("role", "img");
  element.setAttribute("aria-label", label);
  return element;
}
