"""The records hubbub keeps, as the storage layer returns them. Times are UTC microseconds."""

from __future__ import annotations

from dataclasses import dataclass, field

from hubbub.protocol.objects import Attachment, Kind, MessageObject, Role


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str
    created_at: int
    last_seen: int | None = None


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    kind: Kind
    name: str | None
    created_by: str
    created_at: int
    version: int
    member_count: int


@dataclass(frozen=True, slots=True)
class Member:
    conversation_id: str
    user_id: str
    user_name: str
    role: Role
    joined_at: int
    last_read_seq: int = 0


@dataclass(frozen=True, slots=True)
class ReactionSummary:
    emoji: str
    user_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    conversation_id: str
    seq: int
    version: int
    sender_id: str
    sender_name: str
    content: str
    parent_id: str | None
    attachments: tuple[Attachment, ...]
    client_message_id: str | None
    created_at: int
    edited_at: int | None = None
    deleted_at: int | None = None
    deleted_by: str | None = None
    reactions: tuple[ReactionSummary, ...] = ()

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


@dataclass(frozen=True, slots=True)
class MessageDraft:
    """A message as a sender submits it, before it has a place in its conversation."""

    id: str
    conversation_id: str
    sender_id: str
    sender_name: str
    content: str
    parent_id: str | None
    attachments: tuple[Attachment, ...]
    client_message_id: str | None
    created_at: int


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """A conversation as one member sees it in their list."""

    conversation: Conversation
    role: Role
    unread_count: int
    last_message: Message | None
    last_activity: int


@dataclass(frozen=True, slots=True)
class Page:
    """A page of history: ascending messages and whether older ones exist."""

    messages: list[Message]
    has_more: bool


@dataclass(slots=True)
class SendOutcome:
    """The stored message, and whether this call created it (False: an idempotent retry)."""

    message: Message
    created: bool
    extra: dict[str, str] = field(default_factory=dict)
    # The wire form, once the service built it for the broadcast, so the sender's
    # ActionConfirmed reuses it instead of converting the message a second time.
    view: MessageObject | None = None


@dataclass(frozen=True, slots=True)
class SyncPage:
    """Changed messages in ascending `version`, and where the next page starts (§3)."""

    messages: list[Message]
    has_more: bool
    last_version: int


@dataclass(frozen=True, slots=True)
class ReactionChange:
    """The outcome of adding or removing a reaction; `changed` False means it was a no-op
    (nothing stored, no version taken)."""

    conversation_id: str
    message_id: str
    version: int
    changed: bool


@dataclass(frozen=True, slots=True)
class ReceiptChange:
    """The outcome of a read or delivery mark; `changed` False means nothing moved."""

    conversation_id: str
    message_id: str
    at: int
    changed: bool
