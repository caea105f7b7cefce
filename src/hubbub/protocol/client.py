"""Client → server messages (PROTOCOL.md §3): one tagged, frozen Struct per `type`."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from hubbub.domain.limits import (
    HISTORY_LIMIT_DEFAULT,
    HISTORY_LIMIT_MAX,
    MAX_QUERY_CHARS,
    SEARCH_LIMIT_DEFAULT,
    SEARCH_LIMIT_MAX,
    SYNC_LIMIT_DEFAULT,
    SYNC_LIMIT_MAX,
)
from hubbub.protocol.objects import (
    Attachments,
    ClientMessageId,
    Content,
    Emoji,
    Id,
    Mentions,
    RequestId,
    UserId,
)

HistoryLimit = Annotated[int, Meta(ge=1, le=HISTORY_LIMIT_MAX)]
SearchLimit = Annotated[int, Meta(ge=1, le=SEARCH_LIMIT_MAX)]
SyncLimit = Annotated[int, Meta(ge=1, le=SYNC_LIMIT_MAX)]
# A `seq` or `version` cursor: stored as a signed 64-bit integer, so a larger one is refused
# here rather than failing in the database.
Cursor = Annotated[int, Meta(ge=0, le=2**63 - 1)]
Sdp = Annotated[str, Meta(max_length=65536)]
# §3: an ICE candidate is at most 4 KiB (its size is checked again after encoding). As an
# object it is an RTCIceCandidateInit (candidate, sdpMid, sdpMLineIndex, usernameFragment):
# flat, so no nesting is accepted in it (docs/DECISIONS.md "JSON nesting").
Candidate = (dict[str, str | int | float | bool | None]
             | Annotated[str, Meta(max_length=4096)])
Reason = Annotated[str, Meta(max_length=200)]


class ClientMessage(msgspec.Struct, frozen=True, tag_field="type", kw_only=True):
    """Base of every client message: each may carry a request_id, echoed in its response."""

    request_id: RequestId | None = None


class SendMessage(ClientMessage, tag="SendMessage", frozen=True):
    conversation_id: Id
    content: Content = ""
    parent_id: Id | None = None
    attachments: Attachments = msgspec.field(default_factory=list)
    client_message_id: ClientMessageId | None = None
    # Added: user ids of members, or `@here` / `@all` (moderators and above).
    mentions: Mentions = msgspec.field(default_factory=list)


class EditMessage(ClientMessage, tag="EditMessage", frozen=True):
    message_id: Id
    content: Content


class DeleteMessage(ClientMessage, tag="DeleteMessage", frozen=True):
    message_id: Id


class JoinConversation(ClientMessage, tag="JoinConversation", frozen=True):
    conversation_id: Id


class LeaveConversation(ClientMessage, tag="LeaveConversation", frozen=True):
    conversation_id: Id


class FetchHistory(ClientMessage, tag="FetchHistory", frozen=True):
    conversation_id: Id
    before: Cursor | None = None
    limit: HistoryLimit = HISTORY_LIMIT_DEFAULT
    # Added: only the replies to this message (its thread), with the same cursor.
    parent_id: Id | None = None


class SearchMessages(ClientMessage, tag="SearchMessages", frozen=True):
    query: Annotated[str, Meta(min_length=1, max_length=MAX_QUERY_CHARS)]
    conversation_id: Id | None = None
    limit: SearchLimit = SEARCH_LIMIT_DEFAULT
    # Added (PROTOCOL.md §3): how the query matches, and the page to continue from.
    mode: Literal["auto", "words", "substring"] = "auto"
    cursor: Annotated[str, Meta(min_length=1, max_length=200)] | None = None


class SyncMessages(ClientMessage, tag="SyncMessages", frozen=True):
    conversation_id: Id
    since_version: Cursor | None = None
    since: Annotated[str, Meta(max_length=64)] | None = None
    limit: SyncLimit = SYNC_LIMIT_DEFAULT


class Typing(ClientMessage, tag="Typing", frozen=True):
    conversation_id: Id
    is_typing: bool


class MarkAsRead(ClientMessage, tag="MarkAsRead", frozen=True):
    conversation_id: Id
    message_id: Id


class MarkAsDelivered(ClientMessage, tag="MarkAsDelivered", frozen=True):
    conversation_id: Id
    message_id: Id


class UpdateMembership(ClientMessage, tag="UpdateMembership", frozen=True):
    """Added: the caller's own settings of a conversation; an absent field is unchanged."""

    conversation_id: Id
    muted: bool | None = None
    pinned: bool | None = None


class AddReaction(ClientMessage, tag="AddReaction", frozen=True):
    message_id: Id
    emoji: Emoji


class RemoveReaction(ClientMessage, tag="RemoveReaction", frozen=True):
    message_id: Id
    emoji: Emoji


class CallOffer(ClientMessage, tag="CallOffer", frozen=True):
    conversation_id: Id
    call_id: Id
    sdp: Sdp
    call_type: Literal["audio", "video"]
    target_user_id: UserId | None = None


class CallAnswer(ClientMessage, tag="CallAnswer", frozen=True):
    call_id: Id
    sdp: Sdp


class ICECandidate(ClientMessage, tag="ICECandidate", frozen=True):
    call_id: Id
    candidate: Candidate


class CallHangup(ClientMessage, tag="CallHangup", frozen=True):
    call_id: Id
    reason: Reason | None = None


class CallReject(ClientMessage, tag="CallReject", frozen=True):
    call_id: Id
    reason: Reason | None = None


class Ping(ClientMessage, tag="Ping", frozen=True):
    timestamp: Annotated[str, Meta(max_length=64)] | int | float | None = None


AnyClientMessage = (
    SendMessage
    | EditMessage
    | DeleteMessage
    | JoinConversation
    | LeaveConversation
    | FetchHistory
    | SearchMessages
    | SyncMessages
    | Typing
    | MarkAsRead
    | MarkAsDelivered
    | UpdateMembership
    | AddReaction
    | RemoveReaction
    | CallOffer
    | CallAnswer
    | ICECandidate
    | CallHangup
    | CallReject
    | Ping
)
