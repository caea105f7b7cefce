// Attachments (PROTOCOL.md §2: metadata only; hubbub does not host files): an image/* one
// shows as a lazily loaded thumbnail linking to the full image, any other as a file chip.

import { h } from "./dom.js";

const ICON = new URL("./file.svg", import.meta.url).href;

/** The attachments of a message, or null when it has none. */
export function attachmentsElement(message) {
  const attachments = message.attachments || [];
  if (attachments.length === 0) return null;
  return h("div", { class: "attachments" }, ...attachments.map(attachmentElement));
}

function attachmentElement(attachment) {
  const link = { href: attachment.url, target: "_blank", rel: "noopener noreferrer" };
  if (/^image\//i.test(attachment.mime_type)) {
    const image = h("img", {
      src: attachment.thumbnail_url || attachment.url, alt: attachment.name,
      loading: "lazy", decoding: "async", width: attachment.width, height: attachment.height,
    });
    return h("a", { ...link, class: "thumbnail", title: `Open ${attachment.name}` }, image);
  }
  return h("a", { ...link, class: "file-chip", download: attachment.name },
    h("img", { src: ICON, alt: "", width: 16, height: 16 }),
    h("span", { class: "file-name", text: attachment.name }),
    h("span", { class: "file-size", text: sizeText(attachment.size) }));
}

function sizeText(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
