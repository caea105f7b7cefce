"""The request bodies of the server API (PROTOCOL.md §8) and the views it answers with."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

from hubbub.domain.clock import format_optional, format_time
from hubbub.domain.limits import MAX_INITIAL_MEMBERS
from hubbub.domain.models import Member, User
from hubbub.protocol.objects import Attachments, ClientMessageId, Content, Id, Kind, UserId
from hubbub.protocol.objects import Role as RoleName

# Before normalising: a name is at most 100 characters after (domain/profile.py).
RawName = Annotated[str, Meta(max_length=400)]
# An Idempotency-Key: 1–255 visible ASCII characters.
IDEMPOTENCY_KEY = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY = 255


class PutUser(msgspec.Struct, frozen=True):
    name: RawName | None = None
    avatar_url: str | None = None
    metadata: dict[str, Any] | None = None


class CreateConversation(msgspec.Struct, frozen=True):
    kind: Kind
    name: Annotated[str, Meta(max_length=200)] | None = None
    owner_id: UserId | None = None
    member_ids: Annotated[list[UserId], Meta(max_length=MAX_INITIAL_MEMBERS)] = msgspec.field(
        default_factory=list)


class PutMember(msgspec.Struct, frozen=True):
    role: RoleName = "member"


class PostMessage(msgspec.Struct, frozen=True):
    sender_id: UserId | None = None
    content: Content = ""
    parent_id: Id | None = None
    attachments: Attachments = msgspec.field(default_factory=list)
    client_message_id: ClientMessageId | None = None


def user_view(user: User) -> dict[str, Any]:
    return {"id": user.id, "name": user.name, "avatar_url": user.avatar_url,
            "metadata": None if user.metadata is None else msgspec.json.decode(user.metadata),
            "created_at": format_time(user.created_at),
            "last_seen": format_optional(user.last_seen)}


def member_view(member: Member) -> dict[str, Any]:
    return {"user_id": member.user_id, "user_name": member.user_name, "role": member.role,
            "joined_at": format_time(member.joined_at), "accepted": member.accepted}
