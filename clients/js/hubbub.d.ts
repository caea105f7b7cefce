// Types of hubbub.js, written from docs/PROTOCOL.md (wire protocol version 1).

// -- objects (§2) ----------------------------------------------------------------------

export interface Attachment {
  url: string;
  name: string;
  mime_type: string;
  size: number;
  width?: number | null;
  height?: number | null;
  duration_ms?: number | null;
  thumbnail_url?: string | null;
}

export interface Reaction {
  emoji: string;
  count: number;
  user_ids: string[];
}

export interface Message {
  id: string;
  conversation_id: string;
  sender_id: string;
  sender_name: string;
  seq: number;
  version: number;
  content: string;
  parent_id: string | null;
  attachments: Attachment[];
  reactions: Reaction[];
  client_message_id: string | null;
  created_at: string;
  edited_at: string | null;
  deleted_at: string | null;
  kind: "user" | "system";
  /** User ids, or `@here` / `@all` (§2). */
  mentions: string[];
  /** The message's thread: its live replies, and when the latest was sent. */
  reply_count: number;
  last_reply_at: string | null;
}

export type ConversationKind = "direct" | "group" | "channel";
export type Role = "owner" | "admin" | "moderator" | "member" | "read_only" | "banned";

export interface Conversation {
  id: string;
  kind: ConversationKind;
  name: string | null;
  created_by: string;
  created_at: string;
  version: number;
  member_count: number;
  role?: Role;
  unread_count?: number;
  last_message?: Message | null;
}

export interface Limits {
  max_frame_bytes: number;
  max_content_chars: number;
  max_attachments: number;
  history_limit_max: number;
  sync_limit_max: number;
  send_rate_per_s: number;
  send_burst: number;
  other_rate_per_s: number;
  other_burst: number;
  max_reaction_emoji_per_message?: number;
  max_reactions_per_user_per_message?: number;
  conversations_per_hour?: number;
  conversation_burst?: number;
}

export type ErrorCode =
  | "BAD_REQUEST" | "UNAUTHORIZED" | "FORBIDDEN" | "NOT_FOUND" | "CONFLICT" | "RATE_LIMITED"
  | "PAYLOAD_TOO_LARGE" | "INTERNAL_ERROR";

// -- server → client (§4) --------------------------------------------------------------

export interface Connected {
  type: "Connected"; user_id: string; user_name: string; connection_id: string;
  server_time: string; heartbeat_interval_ms: number; limits: Limits;
}
export interface NewMessage { type: "NewMessage"; message: Message }
export interface MessageEdited { type: "MessageEdited"; message: Message }
export interface MessageDeleted {
  type: "MessageDeleted"; conversation_id: string; message_id: string; version: number;
  deleted_at: string; deleted_by: string;
}
export interface ReactionAdded {
  type: "ReactionAdded"; conversation_id: string; message_id: string; version: number;
  user_id: string; emoji: string;
}
export interface ReactionRemoved {
  type: "ReactionRemoved"; conversation_id: string; message_id: string; version: number;
  user_id: string; emoji: string;
}
/** A reply to `message_id` was sent or deleted: its thread's counts, at their own version. */
export interface ThreadUpdated {
  type: "ThreadUpdated"; conversation_id: string; message_id: string; version: number;
  reply_count: number; last_reply_at: string | null;
}
/** Not on the wire: a message's whole state as a sync after a gap or reconnect found it;
 * it stands for every change up to `version` that was not delivered live. */
export interface MessageSynced { type: "MessageSynced"; conversation_id: string; version: number; message: Message }
export interface HistoryChunk {
  type: "HistoryChunk"; conversation_id: string; messages: Message[]; has_more: boolean;
  next_before: number | null; request_id?: string;
}
export interface SyncChunk {
  type: "SyncChunk"; conversation_id: string; messages: Message[]; has_more: boolean;
  last_version: number; request_id?: string;
}
export interface Highlight { message_id: string; ranges: { start: number; length: number }[] }
export interface SearchResults {
  type: "SearchResults"; query: string; conversation_id: string | null; messages: Message[];
  truncated: boolean; mode?: "words" | "substring"; next_cursor?: string | null;
  highlights?: Highlight[]; request_id?: string;
}
export interface UserTyping {
  type: "UserTyping"; conversation_id: string; user_id: string; user_name: string; is_typing: boolean;
}
export interface MessageRead {
  type: "MessageRead"; conversation_id: string; message_id: string; user_id: string; read_at: string;
}
export interface MessageDelivered {
  type: "MessageDelivered"; conversation_id: string; message_id: string; user_id: string;
  delivered_at: string;
}
export interface UserJoined { type: "UserJoined"; conversation_id: string; user_id: string; user_name: string }
export interface PresenceChanged {
  type: "PresenceChanged"; user_id: string; status: "online" | "offline"; last_seen: string | null;
}
export interface CallOffer {
  type: "CallOffer"; conversation_id: string; call_id: string; sdp: string;
  call_type: "audio" | "video"; from_user_id: string; target_user_id?: string | null;
}
export interface CallAnswer { type: "CallAnswer"; call_id: string; conversation_id: string; sdp: string; from_user_id: string }
export interface ICECandidate {
  type: "ICECandidate"; call_id: string; conversation_id: string;
  candidate: Record<string, unknown> | string; from_user_id: string;
}
export interface CallHangup { type: "CallHangup"; call_id: string; conversation_id: string; from_user_id: string; reason: string | null }
export interface CallReject { type: "CallReject"; call_id: string; conversation_id: string; from_user_id: string; reason: string | null }
export interface Pong { type: "Pong"; timestamp: unknown; server_time: string; request_id?: string }
export interface ActionConfirmed {
  type: "ActionConfirmed"; action: ClientMessageType; request_id: string;
  message?: Message; message_id?: string; conversation?: Conversation; role?: Role;
}
export interface ErrorFrame {
  type: "Error"; code: ErrorCode; message: string; request_id?: string | null; retry_after_ms?: number;
}

/** A change to a message, delivered once per version, in version order, per conversation. */
export type Change = NewMessage | MessageEdited | MessageDeleted | ReactionAdded | ReactionRemoved | ThreadUpdated | MessageSynced;

export interface EventMap {
  Connected: Connected;
  NewMessage: NewMessage;
  MessageEdited: MessageEdited;
  MessageDeleted: MessageDeleted;
  ReactionAdded: ReactionAdded;
  ReactionRemoved: ReactionRemoved;
  ThreadUpdated: ThreadUpdated;
  MessageSynced: MessageSynced;
  UserTyping: UserTyping;
  MessageRead: MessageRead;
  MessageDelivered: MessageDelivered;
  UserJoined: UserJoined;
  PresenceChanged: PresenceChanged;
  CallOffer: CallOffer;
  CallAnswer: CallAnswer;
  ICECandidate: ICECandidate;
  CallHangup: CallHangup;
  CallReject: CallReject;
  Error: ErrorFrame;
  change: Change;
  state: { state: ConnectionState; code: number | null };
  outbox: OutboxEntry;
  error: unknown;
}

// -- client → server (§3) --------------------------------------------------------------

export type ClientMessageType =
  | "SendMessage" | "EditMessage" | "DeleteMessage" | "JoinConversation" | "LeaveConversation"
  | "FetchHistory" | "SearchMessages" | "SyncMessages" | "Typing" | "MarkAsRead"
  | "MarkAsDelivered" | "AddReaction" | "RemoveReaction" | "CallOffer" | "CallAnswer"
  | "ICECandidate" | "CallHangup" | "CallReject" | "Ping";

// -- the client ------------------------------------------------------------------------

export type ConnectionState = "idle" | "connecting" | "open" | "closed";
export type OutboxState = "queued" | "sending" | "waiting" | "sent" | "failed";

export interface OutboxEntry {
  clientMessageId: string;
  conversationId: string;
  content: string;
  state: OutboxState;
  attempts: number;
  error: HubbubError | null;
  /** The thread's parent (`parent_id`), null for a message of the timeline. */
  parentId: string | null;
  /** The user ids it mentions, as given to `send` (PROTOCOL.md §3 `mentions`). */
  mentions: string[];
  message: Message | null;
}

export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason?: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export interface ClientOptions {
  /** The server's base URL (`https://chat.example` or `wss://chat.example`); `/ws` is added. */
  url: string;
  /** A JWT (§1). Either this or `getToken`. */
  token?: string;
  /** Called before every connection attempt, so a reconnect (or a `4001`) gets a fresh token. */
  getToken?: () => string | Promise<string>;
  /** Connect with a single-use ticket from `POST /api/v1/ws-tickets`, keeping the JWT out of URLs. */
  useTicket?: boolean;
  /** A WebSocket constructor, where there is no global one (Node 20: the `ws` package). */
  WebSocket?: new (url: string) => WebSocketLike;
  fetch?: typeof fetch;
  /** Reconnect delays: full jitter under `min(maxMs, baseMs * 2^attempt)`. */
  backoff?: { baseMs?: number; maxMs?: number };
  /** A request unanswered this long closes the connection (it is presumed dead). */
  requestTimeoutMs?: number;
}

export interface SendOptions {
  /** The idempotency key; generated when omitted. Sending again with the same one while it
   * is queued returns the same promise; after it settled, the server returns the stored message. */
  clientMessageId?: string;
  parentId?: string;
  attachments?: Attachment[];
  /** User ids of members, or `@here` / `@all` (§3, at most 50); omitted when empty. */
  mentions?: string[];
}

export declare class HubbubError extends Error {
  constructor(code: string, message?: string, frame?: unknown);
  /** An `ErrorCode`, or `OFFLINE`, `CLOSED`, `UNAUTHORIZED`, `HTTP_<status>`. */
  code: ErrorCode | "OFFLINE" | "CLOSED" | string;
  frame: ErrorFrame | Record<string, unknown> | null;
  retryAfterMs: number | null;
}

export declare const CHANGE_TYPES: readonly ["NewMessage", "MessageEdited", "MessageDeleted", "ReactionAdded", "ReactionRemoved", "ThreadUpdated"];

export declare function backoffDelay(attempt: number, baseMs?: number, maxMs?: number, random?: () => number): number;

export declare class HubbubClient {
  constructor(options: ClientOptions);
  readonly state: ConnectionState;
  readonly isOpen: boolean;
  /** The last `Connected` frame (the caller's id and name, the server's limits). */
  readonly connected: Connected | null;
  /** The sends not settled yet, oldest first. */
  readonly outbox: OutboxEntry[];

  on<K extends keyof EventMap>(type: K, handler: (event: EventMap[K]) => void): () => void;
  /** Resolves on the first `Connected`; keeps reconnecting until `close()`. */
  connect(): Promise<Connected>;
  /** Closes for good; rejects every unsettled send with `CLOSED`. */
  close(): void;
  setToken(token: string): void;
  /** JSON over HTTP with the token (§7), e.g. `http("GET", "/api/v1/conversations")`. */
  http<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;

  /** Any client message (§3), resolving with its direct response; rejects with HubbubError
   * (`OFFLINE` when not connected, or when the connection closed before the answer). */
  request<T = ActionConfirmed>(type: ClientMessageType, fields?: Record<string, unknown>): Promise<T>;
  /** Queued: resolves with the stored message, or rejects once with a non-retryable error. */
  send(conversationId: string, content: string, options?: SendOptions): Promise<Message>;
  /** Subscribe; re-joined and synced after every reconnect. */
  join(conversationId: string, options?: { sinceVersion?: number }): Promise<{ conversation: Conversation; role: Role }>;
  leave(conversationId: string): Promise<void>;
  history(conversationId: string, options?: { before?: number; limit?: number }): Promise<HistoryChunk>;
  sync(conversationId: string, sinceVersion: number, options?: { limit?: number }): Promise<SyncChunk>;
  search(query: string, options?: { conversationId?: string; limit?: number; mode?: "auto" | "words" | "substring"; cursor?: string }): Promise<SearchResults>;
  edit(messageId: string, content: string): Promise<Message>;
  delete(messageId: string): Promise<void>;
  react(messageId: string, emoji: string, options?: { remove?: boolean }): Promise<void>;
  typing(conversationId: string, isTyping?: boolean): Promise<void>;
  markRead(conversationId: string, messageId: string): Promise<void>;
}
