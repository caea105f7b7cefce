"""`ReactionStore` on SQL: a change takes the conversation's next version; the caps are
counted under the conversation's lock, so concurrent adds never pass them together."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hubbub.adapters.sql.schema import messages, reactions
from hubbub.adapters.sql.shared import (
    count_where,
    live_message_row,
    lock_conversation,
    message_keys,
    next_version,
    write,
)
from hubbub.adapters.sql.writer import Writer
from hubbub.domain.models import ReactionChange
from hubbub.domain.reactions import check_new_reaction


class SqlReactionStore:
    def __init__(self, engine: AsyncEngine, writer: Writer) -> None:
        self._engine = engine
        self._writer = writer

    async def add_reaction(self, message_id: str, user_id: str, emoji: str,
                           now: int) -> ReactionChange:
        async def _add_reaction(conn: AsyncConnection) -> ReactionChange:
            row = await live_message_row(conn, message_id)
            # Counted under the conversation's lock, so concurrent adds (other instances
            # included) see each other and never pass the caps together.
            await lock_conversation(self._writer, conn, row.conversation_id)
            counts = (await conn.execute(_reaction_counts(message_id, user_id, emoji))).one()
            if counts.already:
                return ReactionChange(row.conversation_id, message_id, row.version, False)
            check_new_reaction(int(counts.distinct_emoji), bool(counts.with_emoji),
                               int(counts.by_user))
            version = await next_version(conn, row.conversation_id, None)
            await conn.execute(reactions.insert().values(
                message_id=message_id, user_id=user_id, emoji=emoji, created_at=now
            ))
            await conn.execute(update(messages).where(messages.c.id == message_id).values(
                version=version, reacted_at=now
            ))
            return ReactionChange(row.conversation_id, message_id, version, True)

        keys = await message_keys(self._engine, self._writer, message_id)
        return await write(self._writer, _add_reaction, keys)

    async def remove_reaction(self, message_id: str, user_id: str, emoji: str,
                              now: int) -> ReactionChange:
        async def _remove_reaction(conn: AsyncConnection) -> ReactionChange:
            row = await live_message_row(conn, message_id)
            if not await _has_reaction(conn, message_id, user_id, emoji):
                return ReactionChange(row.conversation_id, message_id, row.version, False)
            version = await next_version(conn, row.conversation_id, None)
            await conn.execute(delete(reactions).where(
                reactions.c.message_id == message_id, reactions.c.user_id == user_id,
                reactions.c.emoji == emoji,
            ))
            await conn.execute(update(messages).where(messages.c.id == message_id).values(
                version=version, reacted_at=now
            ))
            return ReactionChange(row.conversation_id, message_id, version, True)

        keys = await message_keys(self._engine, self._writer, message_id)
        return await write(self._writer, _remove_reaction, keys)


async def _has_reaction(conn: AsyncConnection, message_id: str, user_id: str,
                        emoji: str) -> bool:
    found = (await conn.execute(select(reactions.c.message_id).where(
        reactions.c.message_id == message_id, reactions.c.user_id == user_id,
        reactions.c.emoji == emoji,
    ))).first()
    return found is not None


def _reaction_counts(message_id: str, user_id: str, emoji: str) -> Any:
    """One pass over the message's reactions (its primary-key range): how many different
    emoji it has, how many of them are `emoji`, how many are the user's, and whether the
    user's `emoji` is there already."""
    mine = reactions.c.user_id == user_id
    same = reactions.c.emoji == emoji
    return select(
        func.count(reactions.c.emoji.distinct()).label("distinct_emoji"),
        count_where(same).label("with_emoji"),
        count_where(mine).label("by_user"),
        count_where(and_(mine, same)).label("already"),
    ).where(reactions.c.message_id == message_id)
