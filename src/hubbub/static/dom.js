// Small DOM helpers the feature modules (thread.js, mentions.js, search.js, directory.js,
// attachments.js) share: building elements without innerHTML, so no content is ever parsed
// as markup.

/** An element: `attrs` are attributes (`dataset`/`on*` handled), `children` strings or nodes. */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "dataset") Object.assign(element.dataset, value);
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "text") element.textContent = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  element.append(...children.filter((child) => child !== null && child !== undefined));
  return element;
}

/** A message time as the timeline shows it (hours and minutes, the reader's locale). */
export function shortTime(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** Split `text` at code point ranges ({start, length}, as the server counts, §3) into
 * strings and `wrap(piece)` nodes; JavaScript strings index UTF-16 units, so the text is
 * walked by code point. */
export function markRanges(text, ranges, wrap) {
  const points = Array.from(text);
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  const out = [];
  let at = 0;
  for (const { start, length } of sorted) {
    if (start < at || length <= 0) continue; // overlapping or empty: shown once
    if (start > at) out.push(points.slice(at, start).join(""));
    out.push(wrap(points.slice(start, start + length).join("")));
    at = start + length;
  }
  if (at < points.length) out.push(points.slice(at).join(""));
  return out;
}
