// Mentions (PROTOCOL.md §3, `SendMessage.mentions`): typing `@` in a message box opens the
// conversation's members, filtered as one types (arrows move, Enter or Tab picks, Escape
// closes); a pick inserts `@Name` and the send carries the member's id. `@here` and `@all`
// are offered to the roles that may send them (moderate). Rendered messages show their
// mentions highlighted, and a message that mentions me is marked.

import { h } from "./dom.js";

const BROADCASTS = ["@here", "@all"];
const MODERATORS = new Set(["owner", "admin", "moderator"]);
const MAX_SHOWN = 8;
let nextList = 0;

/** Give `input` (a textarea) the autocomplete; `members()` resolves to the open
 * conversation's members, `myRole()` to my role there. Returns `take(content)`: the
 * mentions a send of `content` carries (picked names still present), and forgets them. */
export function attachMentions(input, { members, myRole, myId }) {
  const picked = new Map(); // "@Name" → user id or "@here"/"@all"
  const list = h("ul", { class: "mention-list", role: "listbox", id: `mention-list-${nextList++}`,
                         "aria-label": "People to mention", hidden: true });
  input.after(list);
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-controls", list.id);
  let options = [];
  let active = 0;
  let token = null; // {start, end} of the `@…` being typed

  const close = () => {
    list.hidden = true;
    list.replaceChildren();
    options = [];
    token = null;
    input.removeAttribute("aria-activedescendant");
  };

  const show = () => {
    list.replaceChildren(...options.map((option, index) => h("li", {
      id: `${list.id}-${index}`, role: "option", "aria-selected": String(index === active),
      class: "mention-option", dataset: { index: String(index) },
    }, h("span", { class: "mention-name", text: option.label }),
       option.hint ? h("span", { class: "hint", text: ` ${option.hint}` }) : null)));
    list.hidden = options.length === 0;
    if (!list.hidden) input.setAttribute("aria-activedescendant", `${list.id}-${active}`);
  };

  const pick = (option) => {
    const text = input.value;
    const inserted = `${option.label} `;
    input.value = text.slice(0, token.start) + inserted + text.slice(token.end);
    const caret = token.start + inserted.length;
    input.setSelectionRange(caret, caret);
    picked.set(option.label, option.id);
    close();
    input.focus();
  };

  const update = async () => {
    const caret = input.selectionStart;
    const found = /(^|\s)@([^\s@]{0,50})$/.exec(input.value.slice(0, caret));
    if (!found) {
      close();
      return;
    }
    const start = caret - found[2].length - 1;
    const wanted = found[2].toLowerCase();
    const everyone = await members();
    const role = myRole();
    const people = everyone
      .filter((m) => m.user_id !== myId() && m.role !== "banned")
      .map((m) => ({ label: `@${m.user_name}`, id: m.user_id, hint: m.role === "member" ? "" : m.role }));
    const broadcasts = MODERATORS.has(role)
      ? BROADCASTS.map((b) => ({ label: b, id: b, hint: "everyone here" })) : [];
    options = [...people, ...broadcasts]
      .filter((o) => o.label.slice(1).toLowerCase().includes(wanted))
      .sort((a, b) => rank(a, wanted) - rank(b, wanted))
      .slice(0, MAX_SHOWN);
    token = { start, end: caret };
    active = 0;
    show();
  };

  input.addEventListener("input", () => { update(); });
  input.addEventListener("blur", () => setTimeout(close, 150)); // a click on the list first
  // On the form, capturing: before the box's own Enter-sends handler.
  input.form.addEventListener("keydown", (event) => {
    if (event.target !== input || list.hidden || options.length === 0) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      active = (active + (event.key === "ArrowDown" ? 1 : options.length - 1)) % options.length;
      show();
    } else if ((event.key === "Enter" || event.key === "Tab") && !event.isComposing) {
      pick(options[active]);
    } else if (event.key === "Escape") {
      close();
    } else {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
  }, true);
  list.addEventListener("mousedown", (event) => {
    const item = event.target.closest("li[data-index]");
    if (!item) return;
    event.preventDefault(); // keep the focus in the box
    pick(options[Number(item.dataset.index)]);
  });

  return (content) => {
    const ids = [...picked.entries()].filter(([label]) => mentionedIn(content, label))
      .map(([, id]) => id);
    picked.clear();
    close();
    return [...new Set(ids)];
  };
}

function rank(option, wanted) {
  return option.label.slice(1).toLowerCase().startsWith(wanted) ? 0 : 1;
}

function mentionedIn(content, label) {
  const at = content.indexOf(label);
  return at >= 0 && !/[\p{L}\p{N}]/u.test(content.charAt(at + label.length));
}

/** Whether `message` mentions `me` (by id, or @here/@all) and is someone else's. */
export function mentionsMe(message, me) {
  if (message.sender_id === me) return false;
  const mentions = message.mentions || [];
  return mentions.includes(me) || mentions.some((m) => BROADCASTS.includes(m));
}

/** `content` as nodes, each `@Name` of a mentioned user (and @here/@all) highlighted. */
export function contentNodes(message, nameOf, me) {
  const content = message.content;
  const labels = (message.mentions || []).map((id) => ({
    label: BROADCASTS.includes(id) ? id : `@${nameOf(id)}`, self: id === me || BROADCASTS.includes(id),
  })).sort((a, b) => b.label.length - a.label.length);
  if (labels.length === 0) return [content];
  const out = [];
  let plain = "";
  for (let i = 0; i < content.length;) {
    const hit = content[i] === "@" && labels.find(({ label }) => content.startsWith(label, i));
    if (!hit) {
      plain += content[i];
      i += 1;
      continue;
    }
    if (plain) out.push(plain);
    plain = "";
    out.push(h("span", { class: hit.self ? "mention me" : "mention", text: hit.label }));
    i += hit.label.length;
  }
  if (plain) out.push(plain);
  return out;
}
