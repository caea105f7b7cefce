// Messages the SDK has not sent yet (its outbox entries), shown after the sent ones with
// their state: waiting for the connection, sending, sending again after a rate limit, or
// refused, with Retry (the same client_message_id) and Discard.

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
  const reason = entry.state === "failed" && entry.error ? `: ${entry.error.message}` : "";
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
