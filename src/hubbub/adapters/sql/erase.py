"""Erasing what one user left in conversations (the server API's erasure): each of its
messages becomes a tombstone whose content, attachments, edit history and reactions are
gone from the database, not only from the wire; its reactions on other messages and its
receipts go too. Every change clients can see takes the conversation's next version, so
`SyncMessages` and the hubs' repair see it.

Jobs of at most `CHUNK` messages, each under the conversation's lock and a few set-based
statements: a user with many messages must not hold a conversation (on SQLite: every
write) for long (docs/DECISIONS.md, "Server API": 5,000 messages took 5.3 s as one job
of two statements per message)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import delete, func, select, union, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hubbub.adapters.sql.schema import conversations, message_edits, messages, reactions, receipts
from hubbub.adapters.sql.shared import (
    ReadConnection,
    load_messages,
    lock_conversation,
    next_version,
    recount_thread,
    write,
)
from hubbub.adapters.sql.writer import Writer
from hubbub.domain.models import (
    SYSTEM_SENDER,
    Erasure,
    Message,
    RemovedReaction,
    ThreadChange,
)

CHUNK = 500  # live messages tombstoned per job (and ids per IN list, below SQLite's 999)

Job = Callable[[AsyncConnection], Awaitable[Any]]


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
    erasure = Erasure([], [], [])
    for conversation_id in conversation_ids:
        while True:
            chunk: list[Message] = await write(
                writer, _tombstoner(writer, conversation_id, user_id, now), (conversation_id,))
            erasure.tombstones.extend(chunk)
            if len(chunk) < CHUNK:
                break
        removed, threads = await write(
            writer, _cleaner(writer, conversation_id, user_id, now), (conversation_id,))
        erasure.reactions.extend(removed)
        erasure.threads.extend(threads)
    return erasure


def _mine(conversation_id: str, sender_id: str) -> Any:
    return (messages.c.conversation_id == conversation_id) & (
        messages.c.sender_id == sender_id)


def _tombstoner(writer: Writer, conversation_id: str, sender_id: str, now: int) -> Job:
    async def _tombstone_messages(conn: AsyncConnection) -> list[Message]:
        """Tombstone up to CHUNK live messages of the sender, oldest first, taking a run
        of versions in one statement and handing them out by `seq` in another."""
        await lock_conversation(writer, conn, conversation_id)
        ids = [str(row[0]) for row in (await conn.execute(
            select(messages.c.id).where(_mine(conversation_id, sender_id),
                                        messages.c.deleted_at.is_(None))
            .order_by(messages.c.seq).limit(CHUNK))).all()]
        if not ids:
            return []
        top = (await conn.execute(
            update(conversations).where(conversations.c.id == conversation_id)
            .values(version=conversations.c.version + len(ids))
            .returning(conversations.c.version))).scalar_one()
        ranked = select(messages.c.id, func.row_number().over(
            order_by=messages.c.seq).label("rank")).where(messages.c.id.in_(ids)).subquery()
        await conn.execute(update(messages).where(messages.c.id == ranked.c.id).values(
            version=int(top) - len(ids) + ranked.c.rank, deleted_at=now,
            deleted_by=SYSTEM_SENDER, content="", attachments=None))
        await conn.execute(delete(message_edits).where(message_edits.c.message_id.in_(ids)))
        await conn.execute(delete(reactions).where(reactions.c.message_id.in_(ids)))
        return sorted(await load_messages(conn, ids), key=lambda m: m.version)

    return _tombstone_messages


def _cleaner(writer: Writer, conversation_id: str, user_id: str, now: int) -> Job:
    async def _erase_the_rest(conn: AsyncConnection
                              ) -> tuple[list[RemovedReaction], list[ThreadChange]]:
        """What is left once no message of the user is live: the content of tombstones
        deleted before, their edit history and reactions, the user's reactions on other
        messages and its receipts; then the threads its replies were in, recounted."""
        await lock_conversation(writer, conn, conversation_id)
        mine = select(messages.c.id).where(_mine(conversation_id, user_id)).scalar_subquery()
        await conn.execute(update(messages).where(
            _mine(conversation_id, user_id), messages.c.content != ""
        ).values(content="", attachments=None))
        await conn.execute(delete(message_edits).where(message_edits.c.message_id.in_(mine)))
        await conn.execute(delete(reactions).where(reactions.c.message_id.in_(mine)))
        removed = await _unreact(conn, conversation_id, user_id, now)
        await conn.execute(delete(receipts).where(
            receipts.c.conversation_id == conversation_id, receipts.c.user_id == user_id))
        parents = (await conn.execute(select(messages.c.parent_id).distinct().where(
            _mine(conversation_id, user_id), messages.c.parent_id.is_not(None))
            .order_by(messages.c.parent_id))).scalars().all()
        threads = [change for parent in parents
                   if (change := await recount_thread(conn, conversation_id, parent))]
        return removed, threads

    return _erase_the_rest


async def _unreact(conn: AsyncConnection, conversation_id: str, user_id: str,
                   now: int) -> list[RemovedReaction]:
    """Remove the user's reactions on the others' messages, each a version of its own (one
    `ReactionRemoved` each, as if the user had taken them back one by one; a user has at
    most a few per message, so this stays short)."""
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
