"""Erasing what one user left in conversations (the server API's erasure): each of its
messages becomes a tombstone whose content, attachments, edit history and reactions are
gone from the database, not only from the wire; its reactions on other messages and its
receipts go too. One job per conversation, under its lock; every change clients can see
takes the conversation's next version, so `SyncMessages` and the hubs' repair see it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, union, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hubbub.adapters.sql.schema import message_edits, messages, reactions, receipts
from hubbub.adapters.sql.shared import (
    ReadConnection,
    load_messages,
    lock_conversation,
    next_version,
    write,
)
from hubbub.adapters.sql.writer import Writer
from hubbub.domain.models import SYSTEM_SENDER, Erasure, RemovedReaction


async def erase_user_content(engine: AsyncEngine, writer: Writer, user_id: str,
                             now: int) -> Erasure:
    """Erase in every conversation where the user wrote, reacted or left a receipt."""
    touched = union(
        select(messages.c.conversation_id).where(messages.c.sender_id == user_id),
        select(messages.c.conversation_id).join(
            reactions, reactions.c.message_id == messages.c.id
        ).where(reactions.c.user_id == user_id),
        select(receipts.c.conversation_id).where(receipts.c.user_id == user_id),
    )
    async with ReadConnection(engine) as conn:
        conversation_ids = sorted(str(row[0]) for row in (await conn.execute(touched)).all())
    erasure = Erasure([], [])
    for conversation_id in conversation_ids:
        part = await write(writer, _eraser(writer, conversation_id, user_id, now),
                           (conversation_id,))
        erasure.tombstones.extend(part.tombstones)
        erasure.reactions.extend(part.reactions)
    return erasure


def _eraser(writer: Writer, conversation_id: str, user_id: str, now: int) -> Any:
    async def _erase_user_content(conn: AsyncConnection) -> Erasure:
        await lock_conversation(writer, conn, conversation_id)
        tombstones = await _tombstone(conn, conversation_id, user_id, now)
        removed = await _unreact(conn, conversation_id, user_id, now)
        await conn.execute(delete(receipts).where(
            receipts.c.conversation_id == conversation_id, receipts.c.user_id == user_id))
        return Erasure(tombstones, removed)

    return _erase_user_content


async def _tombstone(conn: AsyncConnection, conversation_id: str, sender_id: str,
                     now: int) -> list[Any]:
    """Tombstone the sender's messages; returns those that were live until now."""
    mine = (messages.c.conversation_id == conversation_id) & (
        messages.c.sender_id == sender_id)
    rows = (await conn.execute(select(messages.c.id, messages.c.deleted_at).where(mine)
                               .order_by(messages.c.seq))).all()
    live = [str(row.id) for row in rows if row.deleted_at is None]
    for message_id in live:
        version = await next_version(conn, conversation_id, None)
        await conn.execute(update(messages).where(messages.c.id == message_id).values(
            deleted_at=now, deleted_by=SYSTEM_SENDER, version=version))
    if not rows:
        return []
    # Tombstones deleted before keep no content either.
    await conn.execute(update(messages).where(mine).values(content="", attachments=None))
    ids = [str(row.id) for row in rows]
    await conn.execute(delete(message_edits).where(message_edits.c.message_id.in_(ids)))
    await conn.execute(delete(reactions).where(reactions.c.message_id.in_(ids)))
    return await load_messages(conn, live) if live else []


async def _unreact(conn: AsyncConnection, conversation_id: str, user_id: str,
                   now: int) -> list[RemovedReaction]:
    """Remove the user's reactions on the others' messages, each a version of its own (one
    `ReactionRemoved` each, as if the user had taken them back one by one)."""
    rows = (await conn.execute(
        select(reactions.c.message_id, reactions.c.emoji)
        .join(messages, messages.c.id == reactions.c.message_id)
        .where(messages.c.conversation_id == conversation_id,
               reactions.c.user_id == user_id)
        .order_by(messages.c.seq, reactions.c.created_at, reactions.c.emoji)
    )).all()
    removed: list[RemovedReaction] = []
    for row in rows:
        version = await next_version(conn, conversation_id, None)
        await conn.execute(delete(reactions).where(
            reactions.c.message_id == row.message_id, reactions.c.user_id == user_id,
            reactions.c.emoji == row.emoji))
        await conn.execute(update(messages).where(messages.c.id == row.message_id).values(
            version=version, reacted_at=now))
        removed.append(RemovedReaction(conversation_id, row.message_id, version, row.emoji))
    return removed
