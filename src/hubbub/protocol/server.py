"""Server → client messages (PROTOCOL.md §4): one tagged, frozen Struct per `type`.

Fields typed ``X | UnsetType`` are left out of the JSON when unset; ``None`` is sent as null.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from hubbub.protocol.objects import ConversationObject, MessageObject, Role


class ServerMessage(msgspec.Struct, frozen=True, tag_field="type", kw_only=True):
    """Base of every server message."""


class Limits(msgspec.Struct, frozen=True):
    """The limits a client should respect, announced in `Connected`."""

    max_frame_bytes: int
    max_content_chars: int
    max_attachments: int
    history_limit_max: int
    sync_limit_max: int
    send_rate_per_s: float
    send_burst: int
    other_rate_per_s: float
    other_burst: int
    # Added to §4 (docs/DECISIONS.md): the reaction caps of one message, and the bucket of
    # conversations a user may create.
    max_reaction_emoji_per_message: int
    max_reactions_per_user_per_message: int
    conversations_per_hour: float
    conversation_burst: int
    # Added: the user ids (and `@here`/`@all`) one message may mention.
    max_mentions: int = 0


class Connected(ServerMessage, tag="Connected", frozen=True):
    user_id: str
    user_name: str
    connection_id: str
    server_time: str
    heartbeat_interval_ms: int
    limits: Limits


class NewMessage(ServerMessage, tag="NewMessage", frozen=True):
    message: MessageObject


class MessageEdited(ServerMessage, tag="MessageEdited", frozen=True):
    message: MessageObject


class MessageDeleted(ServerMessage, tag="MessageDeleted", frozen=True):
    conversation_id: str
    message_id: str
    version: int
    deleted_at: str
    deleted_by: str


class HistoryChunk(ServerMessage, tag="HistoryChunk", frozen=True):
    conversation_id: str
    messages: list[MessageObject]
    has_more: bool
    next_before: int | None
    request_id: str | None = None
    # Added: the thread's parent, when the request asked for a thread.
    parent_id: str | UnsetType = UNSET


class MatchRange(msgspec.Struct, frozen=True):
    """One match in a result's content, in code points (as `content`'s limit counts)."""

    start: int
    length: int


class Highlight(msgspec.Struct, frozen=True):
    """Where one result's content matched."""

    message_id: str
    ranges: list[MatchRange]


class SearchResults(ServerMessage, tag="SearchResults", frozen=True):
    query: str
    conversation_id: str | None
    messages: list[MessageObject]
    # True when the search stopped at one of its bounds (PROTOCOL.md §3) before it had
    # examined everything that could have been a better match.
    truncated: bool = False
    request_id: str | None = None
    # Added (PROTOCOL.md §3): the mode that ran, the next page's cursor (None: no more),
    # and one Highlight per message, in the same order.
    mode: Literal["words", "substring"] = "substring"
    next_cursor: str | None = None
    highlights: list[Highlight] = msgspec.field(default_factory=list)


class SyncChunk(ServerMessage, tag="SyncChunk", frozen=True):
    conversation_id: str
    messages: list[MessageObject]
    has_more: bool
    last_version: int
    request_id: str | None = None


class UserTyping(ServerMessage, tag="UserTyping", frozen=True):
    conversation_id: str
    user_id: str
    user_name: str
    is_typing: bool


class MessageRead(ServerMessage, tag="MessageRead", frozen=True):
    conversation_id: str
    message_id: str
    user_id: str
    read_at: str


class MessageDelivered(ServerMessage, tag="MessageDelivered", frozen=True):
    conversation_id: str
    message_id: str
    user_id: str
    delivered_at: str


class ReactionAdded(ServerMessage, tag="ReactionAdded", frozen=True):
    conversation_id: str
    message_id: str
    version: int
    user_id: str
    emoji: str


class ReactionRemoved(ServerMessage, tag="ReactionRemoved", frozen=True):
    conversation_id: str
    message_id: str
    version: int
    user_id: str
    emoji: str


class CallOffer(ServerMessage, tag="CallOffer", frozen=True):
    call_id: str
    conversation_id: str
    sdp: str
    call_type: str
    from_user_id: str
    target_user_id: str


class CallAnswer(ServerMessage, tag="CallAnswer", frozen=True):
    call_id: str
    conversation_id: str
    sdp: str
    from_user_id: str


class ICECandidate(ServerMessage, tag="ICECandidate", frozen=True):
    call_id: str
    conversation_id: str
    candidate: Any
    from_user_id: str


class CallHangup(ServerMessage, tag="CallHangup", frozen=True):
    call_id: str
    conversation_id: str
    from_user_id: str | None
    reason: str | None


class CallReject(ServerMessage, tag="CallReject", frozen=True):
    call_id: str
    conversation_id: str
    from_user_id: str
    reason: str | None


class UserJoined(ServerMessage, tag="UserJoined", frozen=True):
    conversation_id: str
    user_id: str
    user_name: str


class PresenceChanged(ServerMessage, tag="PresenceChanged", frozen=True):
    user_id: str
    status: Literal["online", "offline"]
    last_seen: str | None


class ThreadUpdated(ServerMessage, tag="ThreadUpdated", frozen=True):
    """Added: a reply was sent or deleted, so its parent's thread changed; the parent takes
    `version` (a change of the conversation, in version order like the others)."""

    conversation_id: str
    message_id: str
    version: int
    reply_count: int
    last_reply_at: str | None


class MembershipUpdated(ServerMessage, tag="MembershipUpdated", frozen=True):
    """Added: the caller's own settings of a conversation changed (on another device)."""

    conversation_id: str
    muted: bool
    pinned: bool


class Pong(ServerMessage, tag="Pong", frozen=True):
    timestamp: Any
    server_time: str
    request_id: str | None = None


# The inbox (PROTOCOL.md §4.1): what every connection hears about each conversation of its
# user without joining it. Additive: a client that does not know a type ignores it.


class ConversationAdded(ServerMessage, tag="ConversationAdded", frozen=True):
    """The user became a member (created, added, joined, or a new direct conversation)."""

    conversation: ConversationObject


class ConversationRemoved(ServerMessage, tag="ConversationRemoved", frozen=True):
    """The user's membership ended (left, removed or banned): no more inbox events."""

    conversation_id: str


class MessagePreview(msgspec.Struct, frozen=True):
    """The last message of a summary, compact: `content` is cut at 100
    characters (domain/inbox.py PREVIEW_CHARS)."""

    id: str
    sender_id: str
    sender_name: str
    content: str
    created_at: str
    kind: Literal["user", "system"] = "user"


class ConversationSummaryChanged(ServerMessage, tag="ConversationSummary", frozen=True):
    """A conversation changed as the user's list shows it; `mention_count` is the user's
    unread mentions, `muted` the user's own setting (counted all the same: a client keeps
    the badge and does not notify). Fields may be added, never removed."""

    conversation_id: str
    version: int
    last_message: MessagePreview | None
    unread_count: int
    mention_count: int = 0
    muted: bool = False


class ReadStateChanged(ServerMessage, tag="ReadStateChanged", frozen=True):
    """The user's read mark moved (on any of its devices), with the unread count after."""

    conversation_id: str
    message_id: str
    read_at: str
    unread_count: int
    mention_count: int = 0


class ActionConfirmed(ServerMessage, tag="ActionConfirmed", frozen=True):
    """The direct response of an action; the optional fields depend on `action` (§3)."""

    action: str
    request_id: str | None = None
    message: MessageObject | UnsetType = UNSET
    message_id: str | UnsetType = UNSET
    conversation: ConversationObject | UnsetType = UNSET
    role: Role | UnsetType = UNSET


class Error(ServerMessage, tag="Error", frozen=True):
    code: str
    message: str
    request_id: str | None = None
    retry_after_ms: int | UnsetType = UNSET


AnyServerMessage = (
    Connected
    | NewMessage
    | MessageEdited
    | MessageDeleted
    | HistoryChunk
    | SearchResults
    | SyncChunk
    | UserTyping
    | MessageRead
    | MessageDelivered
    | ReactionAdded
    | ReactionRemoved
    | CallOffer
    | CallAnswer
    | ICECandidate
    | CallHangup
    | CallReject
    | UserJoined
    | MembershipUpdated
    | ThreadUpdated
    | PresenceChanged
    | Pong
    | ConversationAdded
    | ConversationRemoved
    | ConversationSummaryChanged
    | ReadStateChanged
    | ActionConfirmed
    | Error
)
