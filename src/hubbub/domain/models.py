"""The records hubbub keeps, as the storage layer returns them. Times are UTC microseconds.

Frozen msgspec Structs rather than frozen dataclasses: a message and its draft are built for
every send, and a frozen dataclass sets each field through `object.__setattr__` (1.2 µs
for a Message against 0.2 µs).
"""

from __future__ import annotations

import msgspec

from hubbub.protocol.objects import Attachment, Kind, Role


class User(msgspec.Struct, frozen=True):
    """`avatar_url` and `metadata` (a JSON object, as text) are the backend's to set (server
    API); `erased_at` is set while the user is erased: its tokens are refused."""

    id: str
    name: str
    created_at: int
    last_seen: int | None = None
    avatar_url: str | None = None
    metadata: str | None = None
    erased_at: int | None = None

    @property
    def erased(self) -> bool:
        return self.erased_at is not None


class Conversation(msgspec.Struct, frozen=True):
    id: str
    kind: Kind
    name: str | None
    created_by: str
    created_at: int
    version: int
    member_count: int


class ChannelListing(msgspec.Struct, frozen=True):
    """A public channel as the directory lists it to one user (PROTOCOL.md §7)."""

    id: str
    name: str
    created_at: int
    member_count: int
    is_member: bool


class Member(msgspec.Struct, frozen=True):
    """A membership; `accepted_at` is None while the user has not taken part yet (added by
    someone else and never joined or sent: docs/DECISIONS.md, "Consent")."""

    conversation_id: str
    user_id: str
    user_name: str
    role: Role
    joined_at: int
    last_read_seq: int = 0
    accepted_at: int | None = None
    muted: bool = False
    pinned: bool = False

    @property
    def accepted(self) -> bool:
        return self.accepted_at is not None


class UnreadCounts(msgspec.Struct, frozen=True):
    """One member's counts in one conversation, as its summary shows them: what a per-user
    inbox event carries after a send, for each member at once."""

    unread_count: int
    mention_count: int
    last_read_seq: int


class Membership(msgspec.Struct, frozen=True):
    """What the permission checks need of a membership, as the role cache keeps it."""

    role: Role
    accepted: bool


class ReactionSummary(msgspec.Struct, frozen=True):
    emoji: str
    user_ids: tuple[str, ...]


# The sender id of a system message (server API): no user id is empty, so no user can be
# its sender, edit it or delete it, and the idempotency key (sender, conversation,
# client_message_id) still holds for it.
SYSTEM_SENDER = ""


class Message(msgspec.Struct, frozen=True):
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
    # The user ids it mentions (and `@here`/`@all`), as the sender gave them (migration
    # 0011): kept on the stored message for whoever notifies the mentioned later.
    mentions: tuple[str, ...] = ()
    # Its thread (migration 0011): live replies, and when the latest was sent.
    reply_count: int = 0
    last_reply_at: int | None = None

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def is_system(self) -> bool:
        return self.sender_id == SYSTEM_SENDER


class MessageDraft(msgspec.Struct, frozen=True):
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
    mentions: tuple[str, ...] = ()


class ConversationSummary(msgspec.Struct, frozen=True):
    """A conversation as one member sees it in their list."""

    conversation: Conversation
    role: Role
    unread_count: int
    last_message: Message | None
    last_activity: int
    # Migration 0011: the member's unread mentions (the same cap as `unread_count`), its
    # read mark (shared by every device) and its own settings.
    mention_count: int = 0
    last_read_seq: int = 0
    muted: bool = False
    pinned: bool = False


class Page(msgspec.Struct, frozen=True):
    """A page of history: ascending messages and whether older ones exist."""

    messages: list[Message]
    has_more: bool


class SearchPage(msgspec.Struct, frozen=True):
    """Matches in the search's order, and whether the search stopped at one of its bounds
    before it had examined everything that could have been a better match (PROTOCOL.md §3).
    """

    messages: list[Message]
    truncated: bool
    mode: str = "substring"
    # Where the next page starts; None when this page is the last one.
    next_cursor: str | None = None
    # Per message, the (start, length) of each match in its content, in code points.
    highlights: list[list[tuple[int, int]]] = msgspec.field(default_factory=list)


class ThreadChange(msgspec.Struct, frozen=True):
    """What a reply sent or deleted did to its parent: the parent's thread as it was at the
    version the change took (PROTOCOL.md §4 `ThreadUpdated`)."""

    conversation_id: str
    message_id: str
    version: int
    reply_count: int
    last_reply_at: int | None


class Deletion(msgspec.Struct, frozen=True):
    """A soft delete: the message, whether this call deleted it (False: it was already),
    and for a reply, what it did to its parent's thread."""

    message: Message
    changed: bool
    thread: ThreadChange | None = None


class SendOutcome(msgspec.Struct, frozen=True):
    """The stored message, and whether this call created it (False: an idempotent retry);
    for a new reply, what it did to its parent's thread."""

    message: Message
    created: bool
    thread: ThreadChange | None = None


class SyncPage(msgspec.Struct, frozen=True):
    """Changed messages in ascending `version`, and where the next page starts (§3)."""

    messages: list[Message]
    has_more: bool
    last_version: int


class ReactionChange(msgspec.Struct, frozen=True):
    """The outcome of adding or removing a reaction; `changed` False means it was a no-op
    (nothing stored, no version taken)."""

    conversation_id: str
    message_id: str
    version: int
    changed: bool


class ReceiptChange(msgspec.Struct, frozen=True):
    """The outcome of a read or delivery mark; `changed` False means nothing moved."""

    conversation_id: str
    message_id: str
    at: int
    changed: bool


class RemovedReaction(msgspec.Struct, frozen=True):
    """A reaction an erasure took away, with the version its removal took."""

    conversation_id: str
    message_id: str
    version: int
    emoji: str


class Erasure(msgspec.Struct):
    """What erasing a user changed that clients must hear of: its messages made tombstones
    (those that were live) and its reactions removed, in version order per conversation."""

    tombstones: list[Message]
    reactions: list[RemovedReaction]
    # The threads whose replies it tombstoned, recounted (each after the conversation's
    # reactions, in version order).
    threads: list[ThreadChange] = msgspec.field(default_factory=list)
