"""Messages: storing, editing and deleting them, and reading them back by page or by change.

Every change takes its conversation's next `version` (PROTOCOL.md §2), so `sync` can list
what changed after any version.
"""

from __future__ import annotations

from typing import Protocol

from hubbub.domain.models import (
    Deletion,
    Erasure,
    Message,
    MessageDraft,
    Page,
    SendOutcome,
    SyncPage,
)


class MessageStore(Protocol):
    """All times are UTC microseconds."""

    async def send(self, draft: MessageDraft) -> SendOutcome:
        """Store a message under the next version of its conversation (idempotent by
        `client_message_id`)."""

    async def edit(self, message_id: str, content: str, now: int) -> Message:
        """Replace the content, keep the old one in the edit history, bump the version.

        Raises:
            NotFound, Conflict: the message is gone or deleted.
        """

    async def delete(self, message_id: str, deleted_by: str, now: int) -> Deletion:
        """Soft-delete; `changed` False when it was deleted already (nothing changed). A
        reply deleted makes its parent's thread count its live replies again, under the
        next version."""

    async def erase_user_content(self, user_id: str, now: int) -> Erasure:
        """Erase what the user left in conversations: every message it sent becomes a
        tombstone with its content, attachments, edit history and reactions deleted; its
        reactions on other messages and its receipts are deleted. Each change clients see
        (a live message deleted, a reaction removed) takes its conversation's next
        version."""

    async def get_message(self, message_id: str) -> Message | None: ...

    async def history(self, conversation_id: str, before: int | None, limit: int,
                      parent_id: str | None = None) -> Page:
        """The newest `limit` messages with `seq < before`, ascending; only the replies to
        `parent_id` when it is given (a thread)."""

    async def edit_history(self, message_id: str) -> list[tuple[int, str, int]]:
        """(version, previous content, edited_at) of each edit, oldest first."""

    async def sync(self, conversation_id: str, since_version: int | None, since: int | None,
                   limit: int) -> SyncPage:
        """Messages with `version > since_version` (and, with `since`, changed after that
        time), ascending by version, deleted ones included: the `SyncMessages` read, and
        the hub's repair of what the bus lost (services/changes.py)."""
