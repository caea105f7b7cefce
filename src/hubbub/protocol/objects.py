"""The shared wire objects of PROTOCOL.md §2: message, attachment, reaction, conversation."""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from hubbub.domain.limits import (
    MAX_ATTACHMENTS,
    MAX_CONTENT_CHARS,
    MAX_EMOJI_CHARS,
    MAX_ID_CHARS,
    MAX_MENTIONS,
    MAX_URL_CHARS,
    MAX_USER_ID_CHARS,
)

# §2: every id is a lowercase hyphenated UUID string. msgspec matches a pattern with
# `re.search`, where `$` also matches before a final "\n": the length bounds make the match
# whole (36 characters, so "<uuid>\n" is refused).
UUID_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
Id = Annotated[str, Meta(pattern=UUID_PATTERN, min_length=36, max_length=36)]
_UUID = re.compile(UUID_PATTERN)


def is_id(value: str) -> bool:
    """Whether `value` is an id of §2, as a whole (`re.fullmatch`: no trailing newline)."""
    return _UUID.fullmatch(value) is not None


# §2: a user id is the backend's own: 1–128 printable ASCII characters, no space (an
# integer primary key as text, a UUID, `auth0|…`, a Firebase uid, `user_2ab…`). `\Z`, not
# `$`: msgspec matches with `re.search`, and `$` would let a final "\n" through.
USER_ID_PATTERN = rf"^[!-~]{{1,{MAX_USER_ID_CHARS}}}\Z"
UserId = Annotated[str, Meta(pattern=USER_ID_PATTERN, min_length=1,
                             max_length=MAX_USER_ID_CHARS)]
_USER_ID = re.compile(USER_ID_PATTERN)
_UUID_ANY_CASE = re.compile(UUID_PATTERN, re.IGNORECASE)


# What msgspec says of a value the pattern refuses, and what a person reads instead.
_USER_ID_REFUSED = f"Expected `str` matching regex {USER_ID_PATTERN!r}"
USER_ID_RULE = f"a user id: 1-{MAX_USER_ID_CHARS} printable ASCII characters without spaces"


def explain(error: str) -> str:
    """A validation message with the user id pattern spelled as its rule."""
    return error.replace(_USER_ID_REFUSED, f"Expected {USER_ID_RULE}")


def is_user_id(value: str) -> bool:
    """Whether `value` is a user id of §2."""
    return _USER_ID.match(value) is not None


def canonical_user_id(value: str) -> str:
    """One spelling per user: a UUID-shaped id in lowercase, any other id as it is.

    A UUID names the same thing in either case (RFC 9562), and hubbub has always stored
    UUID subjects in lowercase; every other id is the backend's and compared exactly.
    """
    return value.lower() if _UUID_ANY_CASE.fullmatch(value) else value

# §2: client_message_id and request_id are bounded (domain/limits.py holds every bound).
ClientMessageId = Annotated[str, Meta(min_length=1, max_length=MAX_ID_CHARS)]
RequestId = Annotated[str, Meta(max_length=MAX_ID_CHARS)]
# §2: content is bounded (blankness is a domain rule, see domain/validation.py).
Content = Annotated[str, Meta(max_length=MAX_CONTENT_CHARS)]
Emoji = Annotated[str, Meta(min_length=1, max_length=MAX_EMOJI_CHARS)]

Kind = Literal["direct", "group", "channel"]
# §2: a `system` message is posted by the backend (server API) and has no sender.
MessageKind = Literal["user", "system"]
Role = Literal["owner", "admin", "moderator", "member", "read_only", "banned"]


# Sizes and dimensions stay within the integers every JSON client reads exactly (2**53 - 1).
Count = Annotated[int, Meta(ge=0, le=2**53 - 1)]


class Attachment(msgspec.Struct, frozen=True, omit_defaults=True):
    """Attachment metadata (§2); hubbub stores it but does not host files."""

    url: Annotated[str, Meta(min_length=1, max_length=MAX_URL_CHARS)]
    name: Annotated[str, Meta(min_length=1, max_length=255)]
    mime_type: Annotated[str, Meta(pattern=r"^[\w.+-]+/[\w.+-]+$", max_length=255)]
    size: Count
    width: Count | None = None
    height: Count | None = None
    duration_ms: Count | None = None
    thumbnail_url: Annotated[str, Meta(max_length=MAX_URL_CHARS)] | None = None


# §2: attachments per message.
Attachments = Annotated[list[Attachment], Meta(max_length=MAX_ATTACHMENTS)]

# §3: what a message mentions: user ids, or `@here` / `@all` (everyone in it).
MENTION_EVERYONE = frozenset({"@here", "@all"})
Mentions = Annotated[list[UserId], Meta(max_length=MAX_MENTIONS)]


class Reaction(msgspec.Struct, frozen=True):
    """One emoji's aggregate on a message (§2)."""

    emoji: str
    count: int
    user_ids: list[str]


class MessageObject(msgspec.Struct, frozen=True):
    """The message object of §2; a tombstone has empty content, attachments and reactions."""

    id: str
    conversation_id: str
    sender_id: str
    sender_name: str
    seq: int
    version: int
    content: str
    parent_id: str | None
    attachments: list[Attachment]
    reactions: list[Reaction]
    client_message_id: str | None
    created_at: str
    edited_at: str | None
    deleted_at: str | None
    kind: MessageKind = "user"
    # Added (PROTOCOL.md §2): the user ids it mentions, and `@here` / `@all`.
    mentions: list[str] = msgspec.field(default_factory=list)
    # Added (PROTOCOL.md §2): its thread's live replies and when the latest was sent.
    reply_count: int = 0
    last_reply_at: str | None = None


class ConversationObject(msgspec.Struct, frozen=True):
    """The conversation object of §2.

    ``role``, ``unread_count`` and ``last_message`` are the caller's view: present (the last
    possibly null) when the caller is a member, absent otherwise.
    """

    id: str
    kind: Kind
    name: str | None
    created_by: str
    created_at: str
    version: int
    member_count: int
    role: Role | UnsetType = UNSET
    unread_count: int | UnsetType = UNSET
    last_message: MessageObject | UnsetType | None = UNSET
    # Added (PROTOCOL.md §2), the caller's view too: its unread mentions, its read mark
    # (the same on every device) and its own settings of the conversation.
    mention_count: int | UnsetType = UNSET
    last_read_seq: int | UnsetType = UNSET
    muted: bool | UnsetType = UNSET
    pinned: bool | UnsetType = UNSET


class CallObject(msgspec.Struct, frozen=True):
    """A call's record, as the call history of a conversation shows it (docs/DECISIONS.md).

    `state` is `ringing`, `active` or `ended`; `end_reason` is `hangup`, `cancelled`,
    `rejected`, `timeout` (a missed call), `disconnected` or `removed`.
    """

    id: str
    conversation_id: str
    caller_id: str
    callee_id: str
    call_type: str
    state: str
    created_at: str
    answered_at: str | None
    ended_at: str | None
    end_reason: str | None
