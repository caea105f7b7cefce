"""Storing the sends of one group commit together: the hot path of `Store.send`.

The Writer hands the consecutive sends of a batch to `SendBatch` at once (writer.py), and
they cost three statements whatever their number, instead of three each:

1. one SELECT finds the drafts whose `(sender, conversation, client_message_id)` is
   stored already (idempotent retries: they get the stored message, and take no version);
2. one UPDATE takes a run of versions per conversation (`version + n … RETURNING`), so
   versions stay gapless and in arrival order, exactly as one UPDATE per message would;
3. one INSERT stores every new message.

The architecture allows the store to run its hot statement on the raw driver behind the same
seam, and a profile showed why: through SQLAlchemy's adapter each statement costs several
hand-offs to aiosqlite's thread (cursor, execute, fetch, close) plus greenlet switches.
SQLite runs the three statements on aiosqlite's connection directly (one hand-off each),
inside the Writer's transaction; PostgreSQL runs fixed-text statements over arrays
(`unnest`) through the same connection, so asyncpg prepares each once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from hubbub.domain.errors import ChatError, NotFound
from hubbub.domain.models import Message, MessageDraft, SendOutcome

# The messages columns a send writes; the others (edits, deletion, reactions) start NULL.
_COLUMNS = ("id", "conversation_id", "seq", "version", "sender_id", "content", "parent_id",
            "attachments", "client_message_id", "created_at")
_attachments_encoder = msgspec.json.Encoder()

Key = tuple[str, str, str]  # (sender_id, conversation_id, client_message_id)
LoadMessages = Callable[[AsyncConnection, Sequence[str]], Awaitable[list[Message]]]


class SendBatch:
    """The batch runner of `SqlStore.send` (one per store; see Writer.run_batched)."""

    def __init__(self, dialect_name: str, load_messages: LoadMessages) -> None:
        self._sql: _Statements = (_SqliteStatements() if dialect_name == "sqlite"
                                  else _PostgresStatements())
        self._load_messages = load_messages

    async def __call__(self, conn: AsyncConnection,
                       drafts: list[MessageDraft]) -> list[SendOutcome | ChatError]:
        """Store `drafts` in order; one outcome (or NotFound) per draft, in order."""
        outcomes: list[SendOutcome | ChatError | None] = [None] * len(drafts)
        db = await self._sql.handle(conn)
        keyed = {_key(d): d for d in drafts if d.client_message_id is not None}
        stored = await self._sql.existing(db, list(keyed)) if keyed else {}
        if stored:
            found = {m.id: m for m in await self._load_messages(conn, list(stored.values()))}
            for i, draft in enumerate(drafts):
                message_id = stored.get(_key(draft)) if draft.client_message_id else None
                if message_id is not None and message_id in found:
                    outcomes[i] = SendOutcome(found[message_id], created=False)

        # New drafts, in arrival order; a repeated key in this batch is a retry of the first.
        fresh: list[int] = []
        first_of: dict[Key, int] = {}
        counts: dict[str, tuple[int, int]] = {}  # conversation → (messages, latest time)
        for i, draft in enumerate(drafts):
            if outcomes[i] is not None:
                continue
            if draft.client_message_id is not None:
                key = _key(draft)
                if key in first_of:
                    continue
                first_of[key] = i
            fresh.append(i)
            n, at = counts.get(draft.conversation_id, (0, 0))
            counts[draft.conversation_id] = (n + 1, max(at, draft.created_at))
        if not fresh:
            return _complete(outcomes, drafts, first_of)

        last = await self._sql.bump(db, counts)
        # Versions last-n+1 … last, handed out in arrival order within each conversation.
        next_version = {cid: last[cid] - counts[cid][0] + 1 for cid in last}
        rows: list[tuple[Any, ...]] = []
        for i in fresh:
            draft = drafts[i]
            version = next_version.get(draft.conversation_id)
            if version is None:
                outcomes[i] = NotFound("unknown conversation")
                continue
            next_version[draft.conversation_id] = version + 1
            rows.append((
                draft.id, draft.conversation_id, version, version, draft.sender_id,
                draft.content, draft.parent_id,
                _attachments_encoder.encode(list(draft.attachments)).decode()
                if draft.attachments else None,
                draft.client_message_id, draft.created_at,
            ))
            outcomes[i] = SendOutcome(Message(
                id=draft.id, conversation_id=draft.conversation_id, seq=version,
                version=version, sender_id=draft.sender_id, sender_name=draft.sender_name,
                content=draft.content, parent_id=draft.parent_id,
                attachments=draft.attachments, client_message_id=draft.client_message_id,
                created_at=draft.created_at,
            ), created=True)
        if rows:
            await self._sql.insert(db, rows)
        return _complete(outcomes, drafts, first_of)


def _key(draft: MessageDraft) -> Key:
    assert draft.client_message_id is not None
    return (draft.sender_id, draft.conversation_id, draft.client_message_id)


def _complete(outcomes: list[SendOutcome | ChatError | None], drafts: list[MessageDraft],
              first_of: dict[Key, int]) -> list[SendOutcome | ChatError]:
    """Fill in the repeats of a key within the batch from the first draft with that key."""
    done: list[SendOutcome | ChatError] = []
    for i, outcome in enumerate(outcomes):
        if outcome is None:
            first = outcomes[first_of[_key(drafts[i])]]
            assert first is not None
            outcome = first if isinstance(first, ChatError) else SendOutcome(
                first.message, created=False)
        done.append(outcome)
    return done


class _Statements:
    """The three statements of a send batch, on one database, through `handle`'s object."""

    async def handle(self, conn: AsyncConnection) -> Any:
        """What the statements of one batch run on (looked up once per batch)."""
        return conn

    async def existing(self, db: Any, keys: list[Key]) -> dict[Key, str]:
        """The stored message id of each key that has one."""
        raise NotImplementedError

    async def bump(self, db: Any, counts: dict[str, tuple[int, int]]) -> dict[str, int]:
        """Add n to each conversation's version, set its last activity; the new versions
        (conversations that do not exist are left out)."""
        raise NotImplementedError

    async def insert(self, db: Any, rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError


class _SqliteStatements(_Statements):
    """On aiosqlite's own connection: one hand-off to its thread per statement.

    The raw connection is the one SQLAlchemy's transaction runs on; sqlite3 opens the
    transaction at the first write, and the Writer's commit (or rollback) ends it.
    """

    _INSERT = (f"INSERT INTO messages ({', '.join(_COLUMNS)}) "
               f"VALUES ({', '.join('?' * len(_COLUMNS))})")

    async def handle(self, conn: AsyncConnection) -> Any:
        """aiosqlite's Connection under SQLAlchemy's (the same sqlite3 connection)."""
        raw = await conn.get_raw_connection()
        return raw.driver_connection

    async def existing(self, db: Any, keys: list[Key]) -> dict[Key, str]:
        rows = await db.execute_fetchall(
            "SELECT m.sender_id, m.conversation_id, m.client_message_id, m.id "
            f"FROM (VALUES {', '.join(['(?, ?, ?)'] * len(keys))}) AS k "
            "JOIN messages AS m ON m.sender_id = k.column1 "
            "AND m.conversation_id = k.column2 AND m.client_message_id = k.column3",
            [value for key in keys for value in key],
        )
        return {(row[0], row[1], row[2]): row[3] for row in rows}

    async def bump(self, db: Any, counts: dict[str, tuple[int, int]]) -> dict[str, int]:
        if len(counts) == 1:
            ((cid, (n, at)),) = counts.items()
            rows = await db.execute_fetchall(
                "UPDATE conversations SET version = version + ?, last_activity_at = ? "
                "WHERE id = ? RETURNING id, version", (n, at, cid))
        else:
            ids = sorted(counts)
            cases = " ".join(["WHEN ? THEN ?"] * len(ids))
            params: list[Any] = [v for cid in ids for v in (cid, counts[cid][0])]
            params += [v for cid in ids for v in (cid, counts[cid][1])]
            params += ids
            rows = await db.execute_fetchall(
                f"UPDATE conversations SET version = version + CASE id {cases} END, "
                f"last_activity_at = CASE id {cases} END "
                f"WHERE id IN ({', '.join('?' * len(ids))}) RETURNING id, version", params)
        return {row[0]: int(row[1]) for row in rows}

    async def insert(self, db: Any, rows: list[tuple[Any, ...]]) -> None:
        await db.executemany(self._INSERT, rows)


class _PostgresStatements(_Statements):
    """Fixed-text statements over arrays, so asyncpg prepares each once per connection."""

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
    _INSERT = (
        f"INSERT INTO messages ({', '.join(_COLUMNS)}) "
        "SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::bigint[], $4::bigint[], "
        "$5::varchar[], $6::text[], $7::varchar[], $8::text[], $9::varchar[], $10::bigint[])"
    )

    async def existing(self, db: Any, keys: list[Key]) -> dict[Key, str]:
        conn: AsyncConnection = db
        columns = tuple(list(c) for c in zip(*keys, strict=True))
        rows: Sequence[Any] = (await conn.exec_driver_sql(self._EXISTING, columns)).all()
        return {(row[0], row[1], row[2]): row[3] for row in rows}

    async def bump(self, db: Any, counts: dict[str, tuple[int, int]]) -> dict[str, int]:
        conn: AsyncConnection = db
        ids = sorted(counts)
        rows: Sequence[Any] = (await conn.exec_driver_sql(self._BUMP, (
            ids, [counts[cid][0] for cid in ids], [counts[cid][1] for cid in ids]))).all()
        return {row[0]: int(row[1]) for row in rows}

    async def insert(self, db: Any, rows: list[tuple[Any, ...]]) -> None:
        conn: AsyncConnection = db
        await conn.exec_driver_sql(self._INSERT,
                                   tuple(list(c) for c in zip(*rows, strict=True)))
