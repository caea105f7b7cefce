// Search with jump (PROTOCOL.md §3 SearchMessages): a search box over all my conversations
// or the open one; results ranked as the server sends them, with its highlight ranges shown
// as <mark>, paged by `next_cursor`. A click opens the result's conversation, loads older
// history pages until the message is there, scrolls to it and highlights it a moment.

import { h, markRanges, shortTime } from "./dom.js";
import { describeError } from "./errors.js";
import { loadReplyUntil, openThread } from "./thread.js";

const PAGE_SIZE = 20;
const HIGHLIGHT_MS = 4000;

let ui = null;
let search = null; // {query, conversationId, cursor}

/** Set the search box up. `context`: {state, openConversation, loadHistory, titleOf}. */
export function installSearch(context) {
  ui = context;
  const form = h("form", { id: "search", role: "search", onsubmit: (event) => {
    event.preventDefault();
    start();
  } },
  h("label", { for: "search-input", text: "Search messages" }),
  h("div", { class: "search-row" },
    h("input", { id: "search-input", type: "search", maxlength: 200, autocomplete: "off" }),
    h("button", { type: "submit", text: "Search" })),
  h("label", { for: "search-scope", text: "In" }),
  h("select", { id: "search-scope" },
    h("option", { value: "all", text: "All my conversations" }),
    h("option", { value: "current", text: "The open conversation" })),
  h("p", { id: "search-status", class: "hint", role: "status", "aria-live": "polite" }),
  h("ol", { id: "search-results", "aria-label": "Search results" }),
  h("button", { type: "button", id: "search-more", hidden: true, onclick: more,
                text: "More results" }));
  const sidebar = document.getElementById("sidebar");
  sidebar.insertBefore(form, sidebar.firstChild);
  document.getElementById("search-results").addEventListener("click", (event) => {
    const item = event.target.closest("[data-result]");
    if (item) jumpTo(JSON.parse(item.dataset.result)).catch(() => {});
  });
}

async function start() {
  const query = document.getElementById("search-input").value.trim();
  if (!query) return;
  const scoped = document.getElementById("search-scope").value === "current" && ui.state.current;
  search = { query, conversationId: scoped ? ui.state.current : undefined, cursor: null };
  document.getElementById("search-results").replaceChildren();
  await fetchPage();
}

async function more() {
  if (search && search.cursor) await fetchPage();
}

async function fetchPage() {
  const asked = search;
  const status = document.getElementById("search-status");
  status.textContent = "Searching…";
  let page;
  try {
    page = await ui.state.client.search(asked.query, {
      conversationId: asked.conversationId, limit: PAGE_SIZE, cursor: asked.cursor || undefined,
    });
  } catch (error) {
    status.textContent = `Search failed: ${describeError(error)}`;
    return;
  }
  if (search !== asked) return; // a newer search started meanwhile
  const ranges = new Map((page.highlights || []).map((x) => [x.message_id, x.ranges]));
  const list = document.getElementById("search-results");
  list.append(...page.messages.map((m) => resultElement(m, ranges.get(m.id) || [])));
  search.cursor = page.next_cursor;
  document.getElementById("search-more").hidden = !page.next_cursor;
  const count = list.children.length;
  status.textContent = count === 0 ? "No messages found."
    : `${count} ${count === 1 ? "message" : "messages"}${page.truncated ? " (search stopped early)" : ""}`;
}

function resultElement(message, ranges) {
  const conversation = ui.state.conversations.get(message.conversation_id);
  const where = conversation ? ui.titleOf(conversation) : "a conversation";
  const target = { id: message.id, conversation_id: message.conversation_id,
                   parent_id: message.parent_id };
  return h("li", {},
    h("button", { type: "button", class: "search-result", dataset: { result: JSON.stringify(target) } },
      h("span", { class: "meta" },
        h("span", { class: "sender", text: message.sender_name || "Notice" }),
        ` in ${where} · `,
        h("time", { datetime: message.created_at, text: shortTime(message.created_at) })),
      h("span", { class: "excerpt" },
        ...markRanges(message.content, ranges, (text) => h("mark", { text })))));
}

/** Open the message's conversation (its thread, for a reply) and show the message. */
export async function jumpTo(target) {
  const id = target.conversation_id;
  if (ui.state.current !== id) await ui.openConversation(id);
  const anchor = target.parent_id || target.id;
  const messages = () => ui.state.messages.get(id) || new Map();
  // Older pages until the message is loaded: the timeline pages back by `next_before`.
  while (!messages().has(anchor)) {
    const paging = ui.state.paging.get(id);
    if (!paging || !paging.hasMore) break;
    await ui.loadHistory(id, true);
    if (ui.state.current !== id) return;
  }
  let element = document.querySelector(`#messages li[data-message-id="${anchor}"]`);
  if (target.parent_id) {
    await openThread(id, target.parent_id);
    if (await loadReplyUntil(target.id)) {
      element = document.querySelector(`#thread-replies li[data-message-id="${target.id}"]`);
    }
  }
  if (!element) {
    document.getElementById("search-status").textContent = "That message is no longer there.";
    return;
  }
  element.scrollIntoView({ block: "center" });
  element.classList.add("jumped");
  setTimeout(() => element.classList.remove("jumped"), HIGHLIGHT_MS);
}
