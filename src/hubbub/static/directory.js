// The channel directory (PROTOCOL.md §7 `GET /api/v1/channels`, added): "Browse channels"
// lists the public channels by name, filtered as one types, paged by `next_cursor`; "Join"
// sends JoinConversation, which makes me a member of a channel (§5), and opens it.

import { h } from "./dom.js";
import { describeError } from "./errors.js";

const PAGE_SIZE = 25;
const TYPING_PAUSE_MS = 250;

let ui = null;
let listing = null; // {query, cursor}
let timer = null;

/** Set the directory up. `context`: {state, join, refreshConversations, openConversation}. */
export function installDirectory(context) {
  ui = context;
  const dialog = h("dialog", { id: "directory", "aria-labelledby": "directory-title" },
    h("div", { class: "row" },
      h("h2", { id: "directory-title", text: "Browse channels" }),
      h("button", { type: "button", onclick: () => dialog.close(), text: "Close" })),
    h("label", { for: "directory-query", text: "Find a channel" }),
    h("input", { id: "directory-query", type: "search", maxlength: 100, autocomplete: "off",
                 oninput: () => {
                   clearTimeout(timer);
                   timer = setTimeout(start, TYPING_PAUSE_MS);
                 } }),
    h("p", { id: "directory-status", class: "hint", role: "status", "aria-live": "polite" }),
    h("ul", { id: "directory-list", "aria-label": "Channels" }),
    h("button", { type: "button", id: "directory-more", hidden: true, onclick: fetchPage,
                  text: "More channels" }));
  document.body.append(dialog);
  const open = h("button", { type: "button", id: "browse-channels", text: "Browse channels",
                             onclick: () => {
                               dialog.showModal();
                               document.getElementById("directory-query").focus();
                               start();
                             } });
  document.getElementById("conversation-list").before(open);
  dialog.querySelector("#directory-list").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-channel-id]");
    if (button) enter(button.dataset.channelId, button);
  });
}

function start() {
  listing = { query: document.getElementById("directory-query").value.trim(), cursor: null };
  document.getElementById("directory-list").replaceChildren();
  fetchPage();
}

async function fetchPage() {
  const asked = listing;
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (asked.query) params.set("query", asked.query);
  if (asked.cursor) params.set("cursor", asked.cursor);
  const status = document.getElementById("directory-status");
  let page;
  try {
    page = await ui.state.api.get(`/api/v1/channels?${params}`);
  } catch (error) {
    status.textContent = `Could not list channels: ${describeError(error)}`;
    return;
  }
  if (listing !== asked) return; // the filter changed meanwhile
  const list = document.getElementById("directory-list");
  list.append(...page.channels.map(channelElement));
  asked.cursor = page.next_cursor;
  document.getElementById("directory-more").hidden = !page.next_cursor;
  status.textContent = list.children.length === 0 ? "No channels found." : "";
}

function channelElement(channel) {
  const members = `${channel.member_count} ${channel.member_count === 1 ? "member" : "members"}`;
  return h("li", { class: "channel", dataset: { channelId: channel.id } },
    h("span", { class: "channel-name", text: `#${channel.name}` }),
    h("span", { class: "hint", text: members }),
    h("button", {
      type: "button", dataset: { channelId: channel.id },
      "aria-label": `${channel.is_member ? "Open" : "Join"} #${channel.name}`,
      text: channel.is_member ? "Open" : "Join",
    }));
}

async function enter(id, button) {
  button.disabled = true;
  try {
    await ui.join(id); // a channel's JoinConversation makes me a member (§5)
  } catch (error) {
    document.getElementById("directory-status").textContent = `Could not join: ${describeError(error)}`;
    button.disabled = false;
    return;
  }
  await ui.refreshConversations();
  document.getElementById("directory").close();
  await ui.openConversation(id);
}
