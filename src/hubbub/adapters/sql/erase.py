"""Erasing one sender's messages (the server API's erasure): each becomes a tombstone whose
content, attachments, edit history and reactions are gone from the database, not only
from the wire. One job per conversation, under its lock, each live message taking the
conversation's next version so that `SyncMessages` and the hubs' repair see the change."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hubbub.adapters.sql.schema import message_edits, messages, reactions
from hubbub.adapters.sql.shared import (
    ReadConnection,
    load_messages,
    lock_conversation,
    next_version,
    write,
)
from hubbub.adapters.sql.writer import Writer
from hubbub.domain.models import SYSTEM_SENDER, Message


async def erase_sender(engine: AsyncEngine, writer: Writer, sender_id: str,
                       now: int) -> list[Message]:
    """Tombstone every message of `sender_id`; returns those that were live until now (the
    ones whose deletion clients must hear of), in version order per conversation."""
    async with ReadConnection(engine) as conn:
        conversation_ids = sorted(str(row[0]) for row in (await conn.execute(
            select(messages.c.conversation_id).distinct()
            .where(messages.c.sender_id == sender_id)
        )).all())
    erased: list[Message] = []
    for conversation_id in conversation_ids:
        erased += await _erase_in(writer, conversation_id, sender_id, now)
    return erased


async def _erase_in(writer: Writer, conversation_id: str, sender_id: str,
                    now: int) -> list[Message]:
    mine = (messages.c.conversation_id == conversation_id) & (
        messages.c.sender_id == sender_id)

    async def _erase_messages(conn: AsyncConnection) -> list[Message]:
        await lock_conversation(writer, conn, conversation_id)
        ids = [str(row[0]) for row in (await conn.execute(
            select(messages.c.id).where(mine).order_by(messages.c.seq))).all()]
        live = [str(row[0]) for row in (await conn.execute(
            select(messages.c.id).where(mine, messages.c.deleted_at.is_(None))
            .order_by(messages.c.seq))).all()]
        for message_id in live:
            version = await next_version(conn, conversation_id, None)
            await conn.execute(update(messages).where(messages.c.id == message_id).values(
                deleted_at=now, deleted_by=SYSTEM_SENDER, version=version))
        # Tombstones deleted before keep no content either.
        await conn.execute(update(messages).where(mine).values(content="", attachments=None))
        if ids:
            await conn.execute(delete(message_edits).where(message_edits.c.message_id.in_(ids)))
            await conn.execute(delete(reactions).where(reactions.c.message_id.in_(ids)))
        return await load_messages(conn, live) if live else []

    return await write(writer, _erase_messages, (conversation_id,))
