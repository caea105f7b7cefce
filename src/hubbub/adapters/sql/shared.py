"""What the SQL stores share: reads that report a dead database as `StoreUnavailable`,
writes through the Writer with the same translation, conversation locks and versions, and
messages read back with their reactions."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import msgspec
from sqlalchemy import Row, case, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hubbub.adapters.sql.dialect import lock_conversations
from hubbub.adapters.sql.schema import conversations, messages, reactions, users
from hubbub.adapters.sql.writer import Writer
from hubbub.domain.errors import Conflict, NotFound
from hubbub.domain.models import Message, ReactionSummary, ThreadChange
from hubbub.protocol.objects import Attachment
from hubbub.storage.errors import StoreUnavailable

T = TypeVar("T")

# What a database that did not answer raises: SQLAlchemy's errors and the network's; the
# sends also meet sqlite3's own, from the statements run on the raw driver
# (send_statements.py).
SQL_ERRORS = (SQLAlchemyError, OSError)
DRIVER_ERRORS = (*SQL_ERRORS, sqlite3.Error)

_attachments_decoder = msgspec.json.Decoder(tuple[Attachment, ...])
_mentions_decoder = msgspec.json.Decoder(tuple[str, ...])
# An outer join: a system message (sender id "") has no user row; its sender name is "".
_MESSAGE_COLUMNS = (*messages.c, func.coalesce(users.c.name, "").label("sender_name"))


def unavailable(exc: BaseException, what: str = "database error") -> StoreUnavailable:
    return StoreUnavailable(f"{what}: {type(exc).__name__}")


class ReadConnection:
    """`async with ReadConnection(engine) as conn`: a read connection whose driver errors
    surface as StoreUnavailable."""

    __slots__ = ("_context",)

    def __init__(self, engine: AsyncEngine) -> None:
        self._context = engine.connect()

    async def __aenter__(self) -> AsyncConnection:
        try:
            return await self._context.__aenter__()
        except SQL_ERRORS as exc:
            raise unavailable(exc, "database unavailable") from exc

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._context.__aexit__(*exc_info)
        if exc_info[1] is not None and isinstance(exc_info[1], SQL_ERRORS):
            raise unavailable(exc_info[1]) from exc_info[1]


async def write(writer: Writer, job: Callable[[AsyncConnection], Awaitable[T]],
                keys: tuple[str, ...] = ()) -> T:
    """Run `job` in the next group commit (`keys`: the conversations it locks)."""
    try:
        return await writer.run(job, keys)
    except SQL_ERRORS as exc:
        raise unavailable(exc) from exc


async def write_apart(writer: Writer, job: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """A write of one row that belongs to no conversation (a user's, a call's): apart from
    the batches where that matters (Writer.run_apart)."""
    try:
        return await writer.run_apart(job)
    except SQL_ERRORS as exc:
        raise unavailable(exc) from exc


async def lock_conversation(writer: Writer, conn: AsyncConnection,
                            conversation_id: str) -> None:
    """Lock the conversation's row before writing rows of it that do not bump it
    (memberships, receipts), when the Writer orders locks (writer.py): every job then
    locks a conversation before its rows, so no two batches wait on each other's."""
    if writer.orders_locks:
        await lock_conversations(conn, [conversation_id])


async def message_keys(engine: AsyncEngine, writer: Writer,
                       message_id: str) -> tuple[str, ...]:
    """The conversation whose row a change of this message locks, when the Writer orders
    locks (writer.py). A message never moves, so reading it first is safe."""
    if not writer.orders_locks:
        return ()
    async with ReadConnection(engine) as conn:
        found = (await conn.execute(
            select(messages.c.conversation_id).where(messages.c.id == message_id)
        )).scalar()
    return () if found is None else (str(found),)


async def next_version(conn: AsyncConnection, conversation_id: str,
                       activity_at: int | None) -> int:
    """Take the conversation's next version: the one counter of PROTOCOL.md §2."""
    values: dict[str, Any] = {"version": conversations.c.version + 1}
    if activity_at is not None:
        values["last_activity_at"] = activity_at
    version = (await conn.execute(
        update(conversations).where(conversations.c.id == conversation_id)
        .values(**values).returning(conversations.c.version)
    )).scalar()
    if version is None:
        raise NotFound("unknown conversation")
    return int(version)


async def live_message_row(conn: AsyncConnection, message_id: str) -> Row[Any]:
    row = (await conn.execute(select(messages).where(messages.c.id == message_id))).first()
    if row is None:
        raise NotFound("unknown message")
    if row.deleted_at is not None:
        raise Conflict("the message is deleted")
    return row


def count_where(condition: Any) -> Any:
    """How many rows of a group match `condition` (0 for none)."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


# -- messages with their sender's name and reactions ------------------------------------


def message_select() -> Any:
    return select(*_MESSAGE_COLUMNS).select_from(
        messages.outerjoin(users, users.c.id == messages.c.sender_id))


def to_message(row: Row[Any], reactions_of: dict[str, tuple[ReactionSummary, ...]]) -> Message:
    return Message(
        id=row.id,
        conversation_id=row.conversation_id,
        seq=row.seq,
        version=row.version,
        sender_id=row.sender_id,
        sender_name=row.sender_name,
        content=row.content,
        parent_id=row.parent_id,
        attachments=_attachments_decoder.decode(row.attachments) if row.attachments else (),
        client_message_id=row.client_message_id,
        created_at=row.created_at,
        edited_at=row.edited_at,
        deleted_at=row.deleted_at,
        deleted_by=row.deleted_by,
        reactions=reactions_of.get(row.id, ()),
        mentions=_mentions_decoder.decode(row.mentions) if row.mentions else (),
        reply_count=row.reply_count,
        last_reply_at=row.last_reply_at,
    )


async def load_messages(conn: AsyncConnection, ids: Sequence[str]) -> list[Message]:
    rows = (await conn.execute(message_select().where(messages.c.id.in_(ids)))).all()
    return await with_reactions(conn, rows)


async def with_reactions(conn: AsyncConnection, rows: Sequence[Row[Any]]) -> list[Message]:
    # Every reaction's write stamps its message's `reacted_at` (reactions.py, erase.py): a
    # message never stamped has none, and a page of such messages costs no second read.
    live = [row.id for row in rows if row.deleted_at is None and row.reacted_at is not None]
    reactions_of = await _reactions(conn, live) if live else {}
    return [to_message(row, reactions_of) for row in rows]


async def _reactions(conn: AsyncConnection,
                     message_ids: Iterable[str]) -> dict[str, tuple[ReactionSummary, ...]]:
    rows = (await conn.execute(
        select(reactions.c.message_id, reactions.c.emoji, reactions.c.user_id)
        .where(reactions.c.message_id.in_(list(message_ids)))
        .order_by(reactions.c.created_at, reactions.c.user_id)
    )).all()
    grouped: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        grouped.setdefault(row.message_id, {}).setdefault(row.emoji, []).append(row.user_id)
    return {
        message_id: tuple(ReactionSummary(emoji, tuple(uids)) for emoji, uids in by.items())
        for message_id, by in grouped.items()
    }


async def recount_thread(conn: AsyncConnection, conversation_id: str,
                         parent_id: str) -> ThreadChange | None:
    """Count the parent's live replies again (a deleted reply does not count) after a
    reply was deleted or erased: when the count moved, store it under the next version
    and return the change; None when nothing moved (no version taken)."""
    live = (await conn.execute(
        select(func.count(), func.max(messages.c.created_at)).where(
            messages.c.parent_id == parent_id, messages.c.deleted_at.is_(None))
    )).one()
    count, latest = int(live[0]), live[1]
    stored = (await conn.execute(select(messages.c.reply_count, messages.c.last_reply_at)
                                 .where(messages.c.id == parent_id))).first()
    if stored is None or (stored.reply_count, stored.last_reply_at) == (count, latest):
        return None
    version = await next_version(conn, conversation_id, None)
    await conn.execute(update(messages).where(messages.c.id == parent_id).values(
        reply_count=count, last_reply_at=latest, version=version))
    return ThreadChange(conversation_id, parent_id, version, count, latest)
