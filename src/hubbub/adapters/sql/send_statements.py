"""The statements of a send batch (sends.py), one implementation per database, each bound
to the Writer's connection for one batch.

SQLite runs them on aiosqlite's own connection (one hand-off to its thread per statement,
instead of several through SQLAlchemy's adapter), inside the Writer's transaction: sqlite3
opens the transaction at the first write, and the Writer's commit (or rollback) ends it.
PostgreSQL runs fixed-text statements over arrays (`unnest`) through the same connection,
so asyncpg prepares each once per connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

# The messages columns a send writes; the others (edits, deletion, reactions) start NULL.
COLUMNS = ("id", "conversation_id", "seq", "version", "sender_id", "content", "parent_id",
           "attachments", "client_message_id", "created_at", "mentions")
# The message_mentions columns (migration 0011): one row per mentioned user of a message.
MENTION_COLUMNS = ("conversation_id", "user_id", "seq", "message_id", "sender_id")

Key = tuple[str, str, str]  # (sender_id, conversation_id, client_message_id)
Row = tuple[Any, ...]  # the values of COLUMNS, in order
Counts = dict[str, tuple[int, int]]  # conversation → (messages, latest time)
Reply = tuple[str, int, int, int]  # (parent id, replies, latest reply time, version)


class SendStatements(Protocol):
    async def existing(self, keys: list[Key]) -> dict[Key, str]:
        """The stored message id of each key that has one."""

    async def bump(self, counts: Counts, owe_checks_after: int | None) -> dict[str, int]:
        """Add n to each conversation's version, set its last activity; the new versions
        (conversations that do not exist are left out). With `owe_checks_after` (a grace,
        µs), also note each as owed a `message.undelivered` check from its first new
        version on, due that long after its latest message, unless it is already (its
        earlier first unchecked message then stays first)."""

    async def insert(self, rows: list[Row]) -> None:
        """Store the new messages."""

    async def insert_mentions(self, rows: list[Row]) -> None:
        """Store the mentions of the new messages (the values of MENTION_COLUMNS)."""

    async def count_replies(self, updates: list[Reply]) -> dict[str, tuple[int, int]]:
        """Add n replies to each parent, move its last reply time forward and give it the
        version; each parent's (reply_count, last_reply_at) after it (gone ones left out)."""


_OWE_CHECKS = ("INSERT INTO undelivered_checks (conversation_id, from_seq, due_at) {} "
               "ON CONFLICT (conversation_id) DO NOTHING")


class SqliteSendStatements:
    """On aiosqlite's Connection under SQLAlchemy's (the same sqlite3 connection)."""

    __slots__ = ("_db",)
    _INSERT = (f"INSERT INTO messages ({', '.join(COLUMNS)}) "
               f"VALUES ({', '.join('?' * len(COLUMNS))})")
    _INSERT_MENTIONS = (f"INSERT INTO message_mentions ({', '.join(MENTION_COLUMNS)}) "
                        f"VALUES ({', '.join('?' * len(MENTION_COLUMNS))})")
    _COUNT_REPLIES = (
        "UPDATE messages SET reply_count = reply_count + ?, "
        "last_reply_at = MAX(COALESCE(last_reply_at, 0), ?), version = ? "
        "WHERE id = ? RETURNING id, reply_count, last_reply_at"
    )
    _OWE_CHECKS = _OWE_CHECKS.format("VALUES (?, ?, ?)")

    def __init__(self, db: Any) -> None:
        self._db = db

    async def existing(self, keys: list[Key]) -> dict[Key, str]:
        rows = await self._db.execute_fetchall(
            "SELECT m.sender_id, m.conversation_id, m.client_message_id, m.id "
            f"FROM (VALUES {', '.join(['(?, ?, ?)'] * len(keys))}) AS k "
            "JOIN messages AS m ON m.sender_id = k.column1 "
            "AND m.conversation_id = k.column2 AND m.client_message_id = k.column3",
            [value for key in keys for value in key],
        )
        return {(row[0], row[1], row[2]): row[3] for row in rows}

    async def bump(self, counts: Counts, owe_checks_after: int | None) -> dict[str, int]:
        if len(counts) == 1:
            ((cid, (n, at)),) = counts.items()
            rows = await self._db.execute_fetchall(
                "UPDATE conversations SET version = version + ?, last_activity_at = ? "
                "WHERE id = ? RETURNING id, version", (n, at, cid))
        else:
            ids = sorted(counts)
            cases = " ".join(["WHEN ? THEN ?"] * len(ids))
            params: list[Any] = [v for cid in ids for v in (cid, counts[cid][0])]
            params += [v for cid in ids for v in (cid, counts[cid][1])]
            params += ids
            rows = await self._db.execute_fetchall(
                f"UPDATE conversations SET version = version + CASE id {cases} END, "
                f"last_activity_at = CASE id {cases} END "
                f"WHERE id IN ({', '.join('?' * len(ids))}) RETURNING id, version", params)
        versions = {row[0]: int(row[1]) for row in rows}
        if owe_checks_after is not None and versions:
            await self._db.executemany(self._OWE_CHECKS, [
                (cid, version - counts[cid][0] + 1, counts[cid][1] + owe_checks_after)
                for cid, version in versions.items()])
        return versions

    async def insert(self, rows: list[Row]) -> None:
        await self._db.executemany(self._INSERT, rows)

    async def insert_mentions(self, rows: list[Row]) -> None:
        await self._db.executemany(self._INSERT_MENTIONS, rows)

    async def count_replies(self, updates: list[Reply]) -> dict[str, tuple[int, int]]:
        counted: dict[str, tuple[int, int]] = {}
        for parent_id, n, at, version in updates:  # nearly always one parent per batch
            for row in await self._db.execute_fetchall(self._COUNT_REPLIES,
                                                       (n, at, version, parent_id)):
                counted[row[0]] = (int(row[1]), int(row[2]))
        return counted


class PostgresSendStatements:
    """Fixed-text statements over arrays, so asyncpg prepares each once per connection."""

    __slots__ = ("_conn",)
    _EXISTING = (
        "SELECT m.sender_id, m.conversation_id, m.client_message_id, m.id "
        "FROM unnest($1::varchar[], $2::varchar[], $3::varchar[]) AS k(s, c, i) "
        "JOIN messages AS m ON m.sender_id = k.s AND m.conversation_id = k.c "
        "AND m.client_message_id = k.i"
    )
    # The ids come sorted, so that two instances' batches touching the same conversations
    # tend to lock their rows in the same order; a deadlock anyway aborts the batch, and
    # the Writer retries each send alone.
    _BUMP = (
        "UPDATE conversations AS c SET version = c.version + d.n, last_activity_at = d.at "
        "FROM unnest($1::varchar[], $2::bigint[], $3::bigint[]) AS d(id, n, at) "
        "WHERE c.id = d.id RETURNING c.id, c.version"
    )
    # The same, noting the owed checks in the same statement (no second round trip): the
    # rows it locked first, then the notes, in the order every writer of them keeps.
    _BUMP_NOTING = (
        "WITH bumped AS (UPDATE conversations AS c SET version = c.version + d.n, "
        "last_activity_at = d.at "
        "FROM unnest($1::varchar[], $2::bigint[], $3::bigint[]) AS d(id, n, at) "
        "WHERE c.id = d.id RETURNING c.id, c.version, d.n, d.at), "
        "noted AS (" + _OWE_CHECKS.format(
            "SELECT id, version - n + 1, at + $4::bigint FROM bumped") + ") "
        "SELECT id, version FROM bumped"
    )
    _INSERT = (
        f"INSERT INTO messages ({', '.join(COLUMNS)}) "
        "SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::bigint[], $4::bigint[], "
        "$5::varchar[], $6::text[], $7::varchar[], $8::text[], $9::varchar[], $10::bigint[], "
        "$11::text[])"
    )
    _INSERT_MENTIONS = (
        f"INSERT INTO message_mentions ({', '.join(MENTION_COLUMNS)}) "
        "SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::bigint[], $4::varchar[], "
        "$5::varchar[])"
    )

    _COUNT_REPLIES = (
        "UPDATE messages AS m SET reply_count = m.reply_count + d.n, "
        "last_reply_at = GREATEST(COALESCE(m.last_reply_at, 0), d.at), version = d.v "
        "FROM unnest($1::varchar[], $2::bigint[], $3::bigint[], $4::bigint[]) "
        "AS d(id, n, at, v) WHERE m.id = d.id "
        "RETURNING m.id, m.reply_count, m.last_reply_at"
    )

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def existing(self, keys: list[Key]) -> dict[Key, str]:
        columns = tuple(list(c) for c in zip(*keys, strict=True))
        rows: Sequence[Any] = (await self._conn.exec_driver_sql(self._EXISTING, columns)).all()
        return {(row[0], row[1], row[2]): row[3] for row in rows}

    async def bump(self, counts: Counts, owe_checks_after: int | None) -> dict[str, int]:
        ids = sorted(counts)
        params: tuple[Any, ...] = (ids, [counts[cid][0] for cid in ids],
                                   [counts[cid][1] for cid in ids])
        if owe_checks_after is None:
            rows: Sequence[Any] = (await self._conn.exec_driver_sql(self._BUMP, params)).all()
        else:
            rows = (await self._conn.exec_driver_sql(
                self._BUMP_NOTING, (*params, owe_checks_after))).all()
        return {row[0]: int(row[1]) for row in rows}

    async def insert(self, rows: list[Row]) -> None:
        await self._conn.exec_driver_sql(self._INSERT,
                                         tuple(list(c) for c in zip(*rows, strict=True)))

    async def insert_mentions(self, rows: list[Row]) -> None:
        await self._conn.exec_driver_sql(self._INSERT_MENTIONS,
                                         tuple(list(c) for c in zip(*rows, strict=True)))

    async def count_replies(self, updates: list[Reply]) -> dict[str, tuple[int, int]]:
        rows: Sequence[Any] = (await self._conn.exec_driver_sql(
            self._COUNT_REPLIES, tuple(list(c) for c in zip(*updates, strict=True)))).all()
        return {row[0]: (int(row[1]), int(row[2])) for row in rows}
