"""`ReceiptStore` on SQL: read marks live on the membership, delivery times in `receipts`;
both lock the conversation's row first (shared.py `lock_conversation`)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hubbub.adapters.sql.dialect import Dialect
from hubbub.adapters.sql.schema import members, messages, receipts
from hubbub.adapters.sql.shared import lock_conversation, write
from hubbub.adapters.sql.writer import Writer
from hubbub.domain.errors import NotFound
from hubbub.domain.models import ReceiptChange


class SqlReceiptStore:
    def __init__(self, dialect: Dialect, writer: Writer) -> None:
        self._dialect = dialect
        self._writer = writer

    async def mark_read(self, conversation_id: str, user_id: str, message_id: str,
                        now: int) -> ReceiptChange:
        async def _move_read_mark(conn: AsyncConnection) -> ReceiptChange:
            seq = await _seq_in(conn, conversation_id, message_id)
            await lock_conversation(self._writer, conn, conversation_id)
            # Monotonic: the condition on last_read_seq makes an older mark change nothing.
            result = await conn.execute(update(members).where(
                members.c.conversation_id == conversation_id, members.c.user_id == user_id,
                members.c.last_read_seq < seq,
            ).values(last_read_seq=seq, last_read_at=now))
            return ReceiptChange(conversation_id, message_id, now, bool(result.rowcount))

        return await write(self._writer, _move_read_mark, (conversation_id,))

    async def mark_delivered(self, conversation_id: str, user_id: str, message_id: str,
                             now: int) -> ReceiptChange:
        async def _record_delivery(conn: AsyncConnection) -> ReceiptChange:
            await _seq_in(conn, conversation_id, message_id)
            await lock_conversation(self._writer, conn, conversation_id)
            member = (await conn.execute(select(members.c.role).where(
                members.c.conversation_id == conversation_id, members.c.user_id == user_id
            ))).first()
            if member is None:
                return ReceiptChange(conversation_id, message_id, now, False)
            inserted = await conn.execute(self._dialect.insert(receipts).values(
                message_id=message_id, user_id=user_id, conversation_id=conversation_id,
                delivered_at=now,
            ).on_conflict_do_nothing())
            if inserted.rowcount:
                return ReceiptChange(conversation_id, message_id, now, True)
            # A row made by a read receipt may not have a delivery time yet.
            updated = await conn.execute(update(receipts).where(
                receipts.c.message_id == message_id, receipts.c.user_id == user_id,
                receipts.c.delivered_at.is_(None),
            ).values(delivered_at=now))
            return ReceiptChange(conversation_id, message_id, now, bool(updated.rowcount))

        return await write(self._writer, _record_delivery, (conversation_id,))


async def _seq_in(conn: AsyncConnection, conversation_id: str, message_id: str) -> int:
    """The message's seq, checking that it belongs to the conversation."""
    seq = (await conn.execute(select(messages.c.seq).where(
        messages.c.id == message_id, messages.c.conversation_id == conversation_id
    ))).scalar()
    if seq is None:
        raise NotFound("unknown message in this conversation - at `$.message_id`")
    return int(seq)
