"""The scan behind SearchMessages: the newest messages of a few conversations, merged.

A search examines messages newest first across the conversations of its scope, as a k-way
merge would: each conversation is one range of the index on
`(conversation_id, created_at, seq)` (migration 0006), read backwards, and the database
merges the ranges lazily — SQLite's compound `ORDER BY` merges its arms as co-routines,
PostgreSQL's Merge Append pulls from per-arm `LIMIT`s — so what a search reads is what it
examines, never the deployment's other conversations.

It goes in chunks of growing size, each one statement that takes every conversation up
from where the previous chunk left it (a keyset cursor per conversation), and stops at
the first of: `limit` matches, the scope exhausted, `scan_limit` messages examined, or
its deadline (checked between chunks and, by the `Deadline`, inside each statement).
Small chunks first, because most searches find their matches among the newest messages;
growing ones after, so a search that finds nothing costs a handful of statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, case, literal_column, select, tuple_
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from hubbub.adapters.sql.schema import messages
from hubbub.adapters.sql.search_budget import Deadline

if TYPE_CHECKING:
    from hubbub.adapters.sql.dialect import Dialect

# The first chunk: enough for the usual search, whose matches are recent.
FIRST_CHUNK = 256
# Each chunk is this many times the previous one, up to MAX_CHUNK: a search that finds
# nothing examines 50,000 messages in 9 statements.
CHUNK_GROWTH = 4
# Large enough that a statement's overhead (planning a merge of up to 100 ranges) is small
# next to its rows, small enough that PostgreSQL still reads each range by index.
MAX_CHUNK = 8192

Cursor = tuple[int, int]  # (created_at, seq) of the last message taken from a conversation


@dataclass(frozen=True, slots=True)
class ScanResult:
    ids: list[str]  # the matching messages, newest first
    # Everything in scope newer than the last match (or, with fewer than `limit` matches,
    # all of the scope) was examined.
    complete: bool
    # Where a next page resumes: every message newer than this was examined (the last
    # match, or where a bound stopped the scan); None when the scope was exhausted.
    position: Cursor | None = None


async def scan(conn: AsyncConnection, dialect: Dialect, conversation_ids: Sequence[str],
               match: ColumnElement[bool], limit: int, scan_limit: int,
               deadline: Deadline, start: Cursor | None = None) -> ScanResult:
    """Examine the messages of `conversation_ids` older than `start` (None: all), newest
    first across them, for live ones that satisfy `match`; see the module docstring for
    where it stops."""
    if not conversation_ids:
        return ScanResult([], complete=True)
    cursors: list[Cursor | None] = [start] * len(conversation_ids)
    found: list[str] = []
    examined = 0
    chunk = FIRST_CHUNK
    position = start
    while True:
        size = min(chunk, scan_limit - examined)
        if size <= 0 or deadline.expired():
            return ScanResult(found, complete=False, position=position)
        statement = _chunk(dialect, conversation_ids, cursors, match, size)
        await deadline.before_statement(conn)
        try:
            rows: Sequence[Any] = (await conn.execute(statement)).all()
        except DBAPIError as exc:
            if deadline.interrupted(exc):
                return ScanResult(found, complete=False, position=position)
            raise
        examined += len(rows)
        for arm, created_at, seq, hit in rows:
            cursors[arm] = position = (created_at, seq)
            if hit is not None:
                found.append(hit)
                if len(found) == limit:
                    return ScanResult(found, complete=True, position=position)
        if len(rows) < size:
            return ScanResult(found, complete=True)
        chunk = min(chunk * CHUNK_GROWTH, MAX_CHUNK)


def _chunk(dialect: Dialect, conversation_ids: Sequence[str], cursors: Sequence[Cursor | None],
           match: ColumnElement[bool], size: int) -> Any:
    """The next `size` messages of the merged scope after the cursors, newest first: rows
    of (arm, created_at, seq, id if it matches else NULL)."""
    hit = case((and_(messages.c.deleted_at.is_(None), match), messages.c.id), else_=None)
    newest = (messages.c.created_at.desc(), messages.c.seq.desc())
    arms = []
    for arm, (conversation_id, cursor) in enumerate(zip(conversation_ids, cursors,
                                                        strict=True)):
        statement = select(literal_column(str(arm)).label("arm"), messages.c.created_at,
                           messages.c.seq, hit.label("hit")).where(
            messages.c.conversation_id == conversation_id)
        if cursor is not None:
            statement = statement.where(
                tuple_(messages.c.created_at, messages.c.seq) < tuple_(*cursor))
        arms.append(statement)
    if len(arms) == 1:
        return arms[0].order_by(*newest).limit(size)
    return dialect.merge_newest(arms, newest, size)
