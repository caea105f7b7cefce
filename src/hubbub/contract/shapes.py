"""The HTTP response bodies of PROTOCOL.md §7/§8 as msgspec types, for the documents only.

The handlers build these bodies as dicts; describing them here keeps the handlers as they
are, and the schemathesis run (tests/contract_docs) checks every response against them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from hubbub.protocol.objects import (
    CallObject,
    ConversationObject,
    MessageObject,
    Role,
    UserId,
)

# §2: times are RFC 3339 in UTC (domain/clock.py's format_time).
Time = Annotated[str, Meta(extra_json_schema={"format": "date-time"})]


class ErrorDetail(msgspec.Struct, frozen=True):
    code: str
    message: str


class Error(msgspec.Struct, frozen=True):
    """§7: every HTTP error; 429 also carries `Retry-After` (seconds)."""

    error: ErrorDetail


class Health(msgspec.Struct, frozen=True):
    status: Literal["ok", "degraded", "unavailable"]
    degraded: list[str] | UnsetType = UNSET
    failed: list[str] | UnsetType = UNSET


class Me(msgspec.Struct, frozen=True):
    id: UserId
    name: str
    created_at: Time
    last_seen: Time | None


class Ticket(msgspec.Struct, frozen=True):
    ticket: str
    expires_at: Time


class ConversationList(msgspec.Struct, frozen=True):
    conversations: list[ConversationObject]


class MemberObject(msgspec.Struct, frozen=True):
    user_id: UserId
    user_name: str
    role: Role
    joined_at: Time
    accepted: bool


class ListedMember(MemberObject, frozen=True):
    online: bool


class MemberList(msgspec.Struct, frozen=True):
    members: list[ListedMember]


class MessagePage(msgspec.Struct, frozen=True):
    messages: list[MessageObject]
    has_more: bool
    next_before: int | None


class CallPage(msgspec.Struct, frozen=True):
    calls: list[CallObject]
    has_more: bool
    next_before: Time | None


class ServerUser(Me, frozen=True):
    """§8: the user as the backend sees it, its profile included."""

    avatar_url: str | None
    metadata: dict[str, Any] | None


class PresenceEntry(msgspec.Struct, frozen=True):
    user_id: UserId
    online: bool


class Presence(msgspec.Struct, frozen=True):
    members: list[PresenceEntry]
    online: list[UserId]


class Replayed(msgspec.Struct, frozen=True):
    replayed: int  # how many dead events are pending again
