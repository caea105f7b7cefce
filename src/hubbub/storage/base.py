"""The `Store` seam: every use case's storage needs, one method each.

Writes are serialised through one writer per store and batched into shared transactions
(group commit); reads run concurrently. Implementations raise `ChatError`s for the rules
they check inside a transaction (e.g. editing a message deleted a moment ago) and translate
driver errors into `StoreUnavailable`.
"""

from __future__ import annotations

from typing import Protocol

from hubbub.domain.errors import ChatError
from hubbub.domain.models import (
    Conversation,
    ConversationSummary,
    Member,
    Message,
    MessageDraft,
    Page,
    SendOutcome,
    User,
)
from hubbub.protocol.objects import Kind, Role


class StoreUnavailable(ChatError):
    """The database did not answer; reported to clients as INTERNAL_ERROR."""

    code = "INTERNAL_ERROR"
    http_status = 503


class Store(Protocol):
    """Persistent state of hubbub. All times are UTC microseconds."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers a trivial query."""

    async def upsert_user(self, user_id: str, name: str | None, now: int) -> User:
        """Create the user on first sight; refresh the display name when one is given."""

    async def touch_user(self, user_id: str, now: int) -> None:
        """Record `last_seen`."""

    async def get_user(self, user_id: str) -> User | None: ...

    async def create_conversation(
        self, conversation_id: str, kind: Kind, name: str | None, created_by: str,
        member_ids: list[str], now: int,
    ) -> tuple[Conversation, bool]:
        """Create it with the creator as owner and the others as members.

        For `direct`, an existing conversation of the same pair is returned with False.
        """

    async def get_conversation(self, conversation_id: str) -> Conversation | None: ...

    async def list_conversations(self, user_id: str) -> list[ConversationSummary]:
        """The user's conversations (banned ones left out), newest activity first."""

    async def get_role(self, conversation_id: str, user_id: str) -> Role | None: ...

    async def list_members(self, conversation_id: str) -> list[Member]: ...

    async def put_member(
        self, conversation_id: str, user_id: str, role: Role, now: int
    ) -> tuple[Member, bool]:
        """Add a member or change its role; True when the membership was created."""

    async def remove_member(self, conversation_id: str, user_id: str) -> bool: ...

    async def send(self, draft: MessageDraft) -> SendOutcome:
        """Store a message under the next version of its conversation (idempotent by
        `client_message_id`)."""

    async def edit(self, message_id: str, content: str, now: int) -> Message:
        """Replace the content, keep the old one in the edit history, bump the version.

        Raises:
            NotFound, Conflict: the message is gone or deleted.
        """

    async def delete(self, message_id: str, deleted_by: str, now: int) -> tuple[Message, bool]:
        """Soft-delete; False when it was deleted already (nothing changed)."""

    async def get_message(self, message_id: str) -> Message | None: ...

    async def history(self, conversation_id: str, before: int | None, limit: int) -> Page:
        """The newest `limit` messages with `seq < before`, ascending."""

    async def edit_history(self, message_id: str) -> list[tuple[int, str, int]]:
        """(version, previous content, edited_at) of each edit, oldest first."""
