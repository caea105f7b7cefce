"""Read marks and delivery receipts (PROTOCOL.md §3)."""

from __future__ import annotations

from typing import Protocol

from hubbub.domain.models import ReceiptChange


class ReceiptStore(Protocol):
    """All times are UTC microseconds."""

    async def mark_read(self, conversation_id: str, user_id: str, message_id: str,
                        now: int) -> ReceiptChange:
        """Move the member's read mark forward to the message (never back); unchanged for
        an older or equal mark, or when the user is not a member.

        Raises:
            NotFound: the message is not in the conversation.
        """

    async def mark_delivered(self, conversation_id: str, user_id: str, message_id: str,
                             now: int) -> ReceiptChange:
        """Record the first delivery of the message to the member; unchanged for a repeat,
        or when the user is not a member.

        Raises:
            NotFound: the message is not in the conversation.
        """
