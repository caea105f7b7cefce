"""MarkAsRead and MarkAsDelivered (PROTOCOL.md §3).

Both are idempotent: a repeat (or, for reads, a mark at or before the current one) is
confirmed and broadcasts nothing. Marks belong to a membership: a non-member reading a
public channel is confirmed, but nothing is stored for them.
"""

from __future__ import annotations

from hubbub.domain.clock import format_time
from hubbub.domain.models import ReceiptChange
from hubbub.protocol.server import MessageDelivered, MessageRead
from hubbub.services.access import require_readable
from hubbub.services.context import Actor, ServiceContext


class ReceiptService:
    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    async def mark_read(self, actor: Actor, conversation_id: str,
                        message_id: str) -> ReceiptChange:
        """Mark everything up to `message_id` read; the mark only moves forward.
        Broadcasts `MessageRead` when it moved.

        Raises:
            NotFound: unknown conversation, or the message is not in it; Forbidden.
        """
        await require_readable(self._ctx, actor, conversation_id)
        change = await self._ctx.store.mark_read(conversation_id, actor.user_id, message_id,
                                                 self._ctx.clock())
        if change.changed:
            self._ctx.events.to_conversation(conversation_id, MessageRead(
                conversation_id=conversation_id, message_id=message_id,
                user_id=actor.user_id, read_at=format_time(change.at),
            ))
        return change

    async def mark_delivered(self, actor: Actor, conversation_id: str,
                             message_id: str) -> ReceiptChange:
        """Record the first delivery of a message; broadcasts `MessageDelivered` then.

        Raises:
            NotFound: unknown conversation, or the message is not in it; Forbidden.
        """
        await require_readable(self._ctx, actor, conversation_id)
        change = await self._ctx.store.mark_delivered(conversation_id, actor.user_id,
                                                      message_id, self._ctx.clock())
        if change.changed:
            self._ctx.events.to_conversation(conversation_id, MessageDelivered(
                conversation_id=conversation_id, message_id=message_id,
                user_id=actor.user_id, delivered_at=format_time(change.at),
            ))
        return change
