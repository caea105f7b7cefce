// What went wrong, said as a sentence a person can act on: the server's error codes
// (PROTOCOL.md §4) and the SDK's local ones, never an exception's text or a class name.

const SENTENCES = {
  BAD_REQUEST: "The server could not accept that.",
  UNAUTHORIZED: "Your sign-in is no longer valid: sign in again.",
  FORBIDDEN: "You are not allowed to do that here.",
  NOT_FOUND: "That conversation or message no longer exists.",
  CONFLICT: "That cannot be done right now.",
  REJECTED: "Your message was not accepted.",
  PAYLOAD_TOO_LARGE: "That is too large to send.",
  RATE_LIMITED: "You are going a little fast: trying again in a moment.",
  INTERNAL_ERROR: "The server had a problem: try again in a moment.",
  UNAVAILABLE: "The server is restarting: try again in a moment.",
  OFFLINE: "You are offline: it will be sent when the connection is back.",
  CLOSED: "You signed out before it was sent.",
};

/** A sentence for `error` (a HubbubError, or anything thrown): by its code, never its text,
 * except a moderation refusal, whose reason is written for people (docs/WEBHOOKS.md). */
export function describeError(error) {
  const code = error && typeof error.code === "string" ? error.code : "";
  if (code === "REJECTED" && error.message && error.message !== code) {
    return `Your message was not accepted: ${error.message}`;
  }
  if (code.startsWith("HTTP_")) return "The server answered with an error: try again.";
  return SENTENCES[code] || "Something went wrong: try again.";
}

/** A call's failure: the server's refusal (by its code), or the browser's media one. */
export function describeCallError(error) {
  if (error && typeof error.code === "string") return describeError(error);
  if (error && error.name === "NotAllowedError") return "The browser did not allow the camera or microphone.";
  if (error && error.name === "NotFoundError") return "No camera or microphone was found.";
  return "The camera, microphone or screen could not be used.";
}
