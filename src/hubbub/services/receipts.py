"""MarkAsRead and MarkAsDelivered (PROTOCOL.md §3).

Both are idempotent: a repeat (or, for reads, a mark at or before the current one) is
confirmed and broadcasts nothing. Marks belong to a membership: a non-member reading a
public channel is confirmed, but nothing is stored for them.
"""

from __future__ import annotations

from hubbub.domain.clock import format_time
from hubbub.domain.models import ReceiptChange
from hubbub.protocol.server import MessageDelivered, MessageRead
from hubbub.services.access import Access
from hubbub.services.context import Actor, Clock, now_micros
from hubbub.services.events import Events
from hubbub.services.inbox import InboxService
from hubbub.storage.receipts import ReceiptStore


class ReceiptService:
    def __init__(self, receipts: ReceiptStore, access: Access, events: Events, *,
                 clock: Clock = now_micros, inbox: InboxService | None = None) -> None:
        """`inbox`: who tells the reader's other devices (PROTOCOL.md §4.1), if on."""
        self._receipts = receipts
        self._access = access
        self._events = events
        self._clock = clock
        self._inbox = inbox

    async def mark_read(self, actor: Actor, conversation_id: str,
                        message_id: str) -> ReceiptChange:
        """Mark everything up to `message_id` read; the mark only moves forward.
        Broadcasts `MessageRead` when it moved.

        Raises:
            NotFound: unknown conversation, or the message is not in it; Forbidden.
        """
        await self._access.require_readable(actor, conversation_id)
        change = await self._receipts.mark_read(conversation_id, actor.user_id, message_id,
                                                self._clock())
        if change.changed:
            self._events.to_conversation(conversation_id, MessageRead(
                conversation_id=conversation_id, message_id=message_id,
                user_id=actor.user_id, read_at=format_time(change.at),
            ))
            if self._inbox is not None:
                await self._inbox.read(actor.user_id, change)
        return change

    async def mark_delivered(self, actor: Actor, conversation_id: str,
                             message_id: str) -> ReceiptChange:
        """Record the first delivery of a message; broadcasts `MessageDelivered` then.

        Raises:
            NotFound: unknown conversation, or the message is not in it; Forbidden.
        """
        await self._access.require_readable(actor, conversation_id)
        change = await self._receipts.mark_delivered(conversation_id, actor.user_id,
                                                     message_id, self._clock())
        if change.changed:
            self._events.to_conversation(conversation_id, MessageDelivered(
                conversation_id=conversation_id, message_id=message_id,
                user_id=actor.user_id, delivered_at=format_time(change.at),
            ))
        return change
