"""Large stores in seconds: rows written straight into a migrated database.

Sending half a million messages through the server would take many minutes; the search
tests and `bench.search` only need them stored, as the server would have stored them
(versions equal to `seq`, each conversation's counter and last activity set). SQLite gets
one `executemany` transaction, PostgreSQL one `COPY` per table, then `ANALYZE` so that its
planner sees the data the way a long-running deployment's statistics would.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hubbub.adapters.sql import open_sql_database

# Words of the generated messages: none contains another's letters in a way that makes
# "zq" (the benchmarks' query that never matches) appear.
WORDS = ("hello", "world", "meeting", "lunch", "deploy", "review", "coffee", "release",
         "ticket", "design", "budget", "weekend", "server", "client", "thanks", "later")
MESSAGE_COLUMNS = ("id", "conversation_id", "seq", "version", "sender_id", "content",
                   "created_at")
# Microseconds between two messages of one conversation, so timestamps stay realistic.
SPACING_US = 1_000_000


def chatter(room: int, seq: int) -> str:
    """The default content: three words and a number, varied by room and position."""
    return (f"{WORDS[(seq * 7 + room) % len(WORDS)]} {WORDS[(seq * 13 + 3) % len(WORDS)]} "
            f"{WORDS[(seq + room * 5) % len(WORDS)]} {seq}")


@dataclass
class Room:
    """A conversation to create: its members (the first is the owner) and message count."""

    members: list[str]
    messages: int
    kind: str = "group"
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # Who sends the messages: the members in turn.
    content: Callable[[int, int], str] = chatter


def new_user_ids(count: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(count)]


async def bulk_load(database_url: str, users: list[str], rooms: list[Room], *,
                    start_us: int) -> None:
    """Migrate the database at `database_url` and store `users` and `rooms` in it.

    Every room's messages are spread over the same span of time, starting at `start_us`,
    so that conversations interleave in time as they would in a busy deployment.
    """
    database = await open_sql_database(database_url)
    await database.close()
    span = max((r.messages for r in rooms), default=1) * SPACING_US
    tables = _rows(users, rooms, start_us, span)
    if database_url.startswith("sqlite"):
        await asyncio.to_thread(_load_sqlite, database_url.split("///", 1)[1], tables)
    else:
        await _load_postgres(database_url, tables)


def _rows(users: list[str], rooms: list[Room], start_us: int,
          span: int) -> dict[str, tuple[tuple[str, ...], Callable[[], Iterator[tuple[Any, ...]]]]]:
    def user_rows() -> Iterator[tuple[Any, ...]]:
        for i, user_id in enumerate(users):
            yield (user_id, f"bulk-{i}", start_us, start_us)

    def conversation_rows() -> Iterator[tuple[Any, ...]]:
        for i, r in enumerate(rooms):
            yield (r.id, r.kind, f"room-{i}", r.members[0], r.messages, start_us,
                   _created(r, i, r.messages, start_us, span))

    def member_rows() -> Iterator[tuple[Any, ...]]:
        for r in rooms:
            for j, user_id in enumerate(r.members):
                yield (r.id, user_id, "owner" if j == 0 else "member", start_us, 0)

    def message_rows() -> Iterator[tuple[Any, ...]]:
        for i, r in enumerate(rooms):
            prefix = r.id[:24]  # the room's id up to its last group: ids stay UUID-shaped
            for seq in range(1, r.messages + 1):
                message_id = f"{prefix}{seq:012x}"
                yield (message_id, r.id, seq, seq, r.members[seq % len(r.members)],
                       r.content(i, seq), _created(r, i, seq, start_us, span))

    return {
        "users": (("id", "name", "created_at", "last_seen"), user_rows),
        "conversations": (("id", "kind", "name", "created_by", "version", "created_at",
                           "last_activity_at"), conversation_rows),
        "members": (("conversation_id", "user_id", "role", "joined_at", "last_read_seq"),
                    member_rows),
        "messages": (MESSAGE_COLUMNS, message_rows),
    }


def _created(room: Room, index: int, seq: int, start_us: int, span: int) -> int:
    """The room's messages evenly over `span`; the room's index breaks ties between rooms."""
    return start_us + (seq * span) // max(room.messages, 1) + index


def _load_sqlite(path: str, tables: dict[str, Any]) -> None:
    db = sqlite3.connect(path)
    try:
        with db:
            for table, (columns, rows) in tables.items():
                marks = ", ".join("?" * len(columns))
                db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                               rows())
        db.execute("ANALYZE")
    finally:
        db.close()


async def _load_postgres(database_url: str, tables: dict[str, Any]) -> None:
    import asyncpg

    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        async with conn.transaction():
            for table, (columns, rows) in tables.items():
                await conn.copy_records_to_table(table, records=rows(), columns=columns)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
