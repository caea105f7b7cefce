"""Everything that differs between SQLite and PostgreSQL, in one object per database (as
Synapse's storage engines do), so that the stores never ask which database they are on.

SQLite: one process, one writer, so no lock order and no advisory locks; `LIKE` folds ASCII
only (a Python function folds the rest); words are found in the FTS5 table `messages_fts`
and ranked by bm25; a search is stopped by a progress handler.
PostgreSQL: several instances write at once, so batches lock conversations in one order;
`= ANY(array)` instead of long `IN` lists; `ILIKE` on the pg_trgm index; words are found in
the GIN-indexed `content_tsv` and ranked by ts_rank; a search is stopped by
`statement_timeout`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    any_,
    bindparam,
    delete,
    func,
    literal_column,
    select,
    text,
    union_all,
)
from sqlalchemy import table as table_clause
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hubbub.adapters.sql import engine, matching, window_floor
from hubbub.adapters.sql.outbox_statements import (
    OutboxStatements,
    PostgresOutboxStatements,
    SqliteOutboxStatements,
)
from hubbub.adapters.sql.schema import conversations, messages
from hubbub.adapters.sql.search_budget import (
    Deadline,
    PostgresDeadline,
    SearchLimits,
    SqliteDeadline,
)
from hubbub.adapters.sql.search_words import WindowRead, WordMatch
from hubbub.adapters.sql.send_statements import (
    PostgresSendStatements,
    SendStatements,
    SqliteSendStatements,
)
from hubbub.adapters.sql.writer import Locker

# Migration 0009's FTS5 table on SQLite.
_FTS_TABLE = "messages_fts"
# Any constant works; it only has to be the same for every hubbub instance.
_PG_MIGRATION_LOCK = 0x6875_6262

Order = tuple[ColumnElement[Any], ...]  # ORDER BY clauses, e.g. (created_at DESC, seq DESC)


class Dialect(Protocol):
    """What the SQL stores need to know about their database. It has no name to compare:
    a difference is a method here, never a branch in a store."""

    @property
    def conversation_locker(self) -> Locker | None:
        """How a batch locks the conversations it writes, in one order; None where only
        one writer exists (storage needs no lock order there: writer.py)."""

    def create_engines(self, driver_url: str, search: SearchLimits
                       ) -> tuple[AsyncEngine, AsyncEngine]:
        """The main pool and the searches' own (search_budget.py)."""

    def create_engine(self, driver_url: str) -> AsyncEngine:
        """The main pool alone, for tools that open a database without serving it."""

    async def begin_snapshot(self, conn: AsyncConnection) -> None:
        """Start a read-only transaction whose every read sees one snapshot (copy.py)."""

    async def empty_tables(self, conn: AsyncConnection, tables: Sequence[Table]) -> None:
        """Delete every row of `tables` (ordered parents first) in this transaction."""

    def insert(self, table: Table) -> Any:
        """An INSERT that supports ON CONFLICT on this database."""

    def one_of(self, column: ColumnElement[Any], values: list[Any]) -> ColumnElement[bool]:
        """`column IN values`, in the form this database binds cheaply."""

    def one_of_bound(self, column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
        """`one_of` with its list bound at execution as the parameter `name`: for a
        statement built once and run with many lists."""

    def in_select(self, column: ColumnElement[Any], query: Select[Any]
                  ) -> ColumnElement[bool]:
        """`column IN (query)`, in the form whose values this database can look up in an
        index on `column` (and so combine with other indexes)."""

    def contains_insensitive(self, column: ColumnElement[str],
                             query: str) -> ColumnElement[bool]:
        """`column` contains `query`, ignoring case, with no wildcards (matching.py)."""

    def code_point_order(self, column: ColumnElement[str]) -> ColumnElement[str]:
        """`column` compared and sorted by code point, whatever the database's locale, so
        that a listing's order and its cursors are the same on every database."""

    def word_match(self, words: Sequence[str]) -> WordMatch:
        """Messages holding every one of `words` (each as a word or a word's beginning),
        on this database's full-text index (migration 0009), and their score."""

    async def window_read(self, conn: AsyncConnection, words: Sequence[str],
                          matches: Select[Any], top: Sequence[Any] | None,
                          wanted: int) -> WindowRead:
        """How the words search reads the newest `wanted` rows of `matches` (the messages
        holding `words`) at or below `top` (a window's top, None: the newest): the floor
        to try first (it checks it) and the scope's form."""

    def new_deadline(self, timeout_s: float) -> Deadline:
        """The deadline of a search starting now, enforced the way this database allows."""

    def merge_newest(self, arms: Sequence[Select[Any]], newest: Order, size: int) -> Any:
        """The first `size` rows in `newest` order of several per-conversation selects of
        (…, created_at, seq, …), merged lazily by the database (search_scan.py)."""

    async def send_statements(self, conn: AsyncConnection) -> SendStatements:
        """The three statements of a send batch, bound to the Writer's connection."""

    async def outbox_statements(self, conn: AsyncConnection) -> OutboxStatements:
        """The INSERT of a batch's outgoing events (outbox_statements.py)."""

    async def lock_migrations(self, conn: AsyncConnection) -> None:
        """Keep instances starting at once from migrating together."""

    async def continue_sequences(self, conn: AsyncConnection, tables: Sequence[Table]
                                 ) -> None:
        """After rows were copied in with their keys: let generated keys (the outbox's
        `seq`) go on after the highest one."""


def _newest(columns: Any) -> Order:
    return columns.created_at.desc(), columns.seq.desc()


class SqliteDialect:
    """One process and one writer: no lock order, no advisory lock."""

    conversation_locker: Locker | None = None

    def create_engines(self, driver_url: str, search: SearchLimits
                       ) -> tuple[AsyncEngine, AsyncEngine]:
        return engine.sqlite_engines(driver_url, search)

    def create_engine(self, driver_url: str) -> AsyncEngine:
        return engine.sqlite_engine(driver_url)

    async def begin_snapshot(self, conn: AsyncConnection) -> None:
        # sqlite3 begins no transaction for a SELECT by itself: each would read its own
        # snapshot. WAL fixes a read transaction's snapshot at its first read.
        await conn.exec_driver_sql("BEGIN")

    async def empty_tables(self, conn: AsyncConnection, tables: Sequence[Table]) -> None:
        for table in reversed(tables):
            await conn.execute(delete(table))

    def insert(self, table: Table) -> Any:
        return sqlite.insert(table)

    def one_of(self, column: ColumnElement[Any], values: list[Any]) -> ColumnElement[bool]:
        return column.in_(values)

    def one_of_bound(self, column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
        return column.in_(bindparam(name, expanding=True))

    def in_select(self, column: ColumnElement[Any], query: Select[Any]
                  ) -> ColumnElement[bool]:
        return column.in_(query)

    def contains_insensitive(self, column: ColumnElement[str],
                             query: str) -> ColumnElement[bool]:
        return matching.lowered_like(column, query)

    def code_point_order(self, column: ColumnElement[str]) -> ColumnElement[str]:
        return column  # SQLite's default collation, BINARY, compares UTF-8 bytes

    def word_match(self, words: Sequence[str]) -> WordMatch:
        # Each word a quoted string (it holds letters and digits only) and a prefix.
        index = table_clause(_FTS_TABLE, literal_column("rowid"))
        fts: ColumnElement[Any] = literal_column(_FTS_TABLE)
        return WordMatch(
            source=messages.join(index, index.c.rowid == literal_column("messages.rowid")),
            match=fts.op("MATCH")(" AND ".join(f'"{w}"*' for w in words)),
            score=func.bm25(fts),
            # The insertion order: FTS5 walks its matches by rowid, newest first, and
            # stops at the window, where ordering by created_at would sort them all.
            age=(index.c.rowid,))

    async def window_read(self, conn: AsyncConnection, words: Sequence[str],
                          matches: Select[Any], top: Sequence[Any] | None,
                          wanted: int) -> WindowRead:
        return WindowRead()  # FTS5 walks its matches newest first and stops at the window

    def new_deadline(self, timeout_s: float) -> Deadline:
        return SqliteDeadline(timeout_s)

    def merge_newest(self, arms: Sequence[Select[Any]], newest: Order, size: int) -> Any:
        # SQLite merges a compound SELECT's arms under its ORDER BY (arms with their own
        # LIMIT would be materialised and sorted first).
        compound = union_all(*arms)
        return compound.order_by(*_newest(compound.selected_columns)).limit(size)

    async def send_statements(self, conn: AsyncConnection) -> SendStatements:
        raw = await conn.get_raw_connection()
        return SqliteSendStatements(raw.driver_connection)

    async def outbox_statements(self, conn: AsyncConnection) -> OutboxStatements:
        raw = await conn.get_raw_connection()
        return SqliteOutboxStatements(raw.driver_connection)

    async def lock_migrations(self, conn: AsyncConnection) -> None:
        return None  # one process opens the file; SQLite locks it for the migration

    async def continue_sequences(self, conn: AsyncConnection, tables: Sequence[Table]
                                 ) -> None:
        return None  # an INTEGER PRIMARY KEY goes on from the highest rowid by itself


class PostgresDialect:
    """Several instances write at once: batches lock conversations in one order."""
    @property
    def conversation_locker(self) -> Locker | None:
        return lock_conversations

    def create_engines(self, driver_url: str, search: SearchLimits
                       ) -> tuple[AsyncEngine, AsyncEngine]:
        return engine.postgres_engines(driver_url, search)

    def create_engine(self, driver_url: str) -> AsyncEngine:
        return engine.postgres_engine(driver_url)

    async def begin_snapshot(self, conn: AsyncConnection) -> None:
        await conn.execution_options(isolation_level="REPEATABLE READ",
                                     postgresql_readonly=True)
        await conn.begin()

    async def empty_tables(self, conn: AsyncConnection, tables: Sequence[Table]) -> None:
        # One statement, without a scan of every row.
        await conn.execute(text("TRUNCATE " + ", ".join(t.name for t in tables)))

    def insert(self, table: Table) -> Any:
        return postgresql.insert(table)

    def one_of(self, column: ColumnElement[Any], values: list[Any]) -> ColumnElement[bool]:
        # One parameter: an `IN` list binds and renders a parameter per value, measured at
        # 2–6× the CPU for thousands.
        return column == any_(bindparam("one_of", values, type_=postgresql.ARRAY(column.type),
                                         unique=True))

    def one_of_bound(self, column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
        return column == any_(bindparam(name, type_=postgresql.ARRAY(column.type)))

    def in_select(self, column: ColumnElement[Any], query: Select[Any]
                  ) -> ColumnElement[bool]:
        # `= ANY(ARRAY(…))`: the values an index condition, where `IN (…)` is a join that
        # reads every row the other conditions found before it rules one out.
        return column == any_(func.array(query.scalar_subquery()))

    def contains_insensitive(self, column: ColumnElement[str],
                             query: str) -> ColumnElement[bool]:
        return matching.ilike(column, query)

    def code_point_order(self, column: ColumnElement[str]) -> ColumnElement[str]:
        return column.collate("C")  # bytes of UTF-8, as SQLite's BINARY

    def word_match(self, words: Sequence[str]) -> WordMatch:
        tsv: ColumnElement[Any] = literal_column("messages.content_tsv")
        query = func.to_tsquery(literal_column("'simple'::regconfig"),
                                " & ".join(f"{w}:*" for w in words))
        # Normalisation 1: divided by 1 + log(length), as bm25 favours the shorter message.
        return WordMatch(source=messages, match=tsv.op("@@")(query),
                         score=-func.ts_rank(tsv, query, 1),
                         age=(messages.c.created_at, messages.c.id))

    async def window_read(self, conn: AsyncConnection, words: Sequence[str],
                          matches: Select[Any], top: Sequence[Any] | None,
                          wanted: int) -> WindowRead:
        # The age is (created_at, id): the floor is a created_at (window_floor.py).
        return await window_floor.window_read(
            conn, words, matches, None if top is None else int(top[0]), wanted)

    def new_deadline(self, timeout_s: float) -> Deadline:
        return PostgresDeadline(timeout_s)

    def merge_newest(self, arms: Sequence[Select[Any]], newest: Order, size: int) -> Any:
        # Each arm sorted and limited itself: only then does the planner merge the index
        # ranges (Merge Append) instead of reading every arm whole and sorting.
        merged = union_all(*(a.order_by(*newest).limit(size) for a in arms)).subquery()
        return select(merged).order_by(*_newest(merged.c)).limit(size)

    async def send_statements(self, conn: AsyncConnection) -> SendStatements:
        return PostgresSendStatements(conn)

    async def outbox_statements(self, conn: AsyncConnection) -> OutboxStatements:
        return PostgresOutboxStatements(conn)

    async def lock_migrations(self, conn: AsyncConnection) -> None:
        await conn.execute(text(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})"))

    async def continue_sequences(self, conn: AsyncConnection, tables: Sequence[Table]
                                 ) -> None:
        for table in tables:
            for column in table.primary_key.columns:
                if column.autoincrement is True:
                    await conn.execute(text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', "
                        f"'{column.name}'), coalesce(max({column.name}), 0) + 1, false) "
                        f"FROM {table.name}"))


async def lock_conversations(conn: AsyncConnection, ids: list[str]) -> None:
    """Lock these conversations' rows in the order given (LockRows runs above the sort)."""
    await conn.execute(
        select(conversations.c.id).where(conversations.c.id.in_(ids))
        .order_by(conversations.c.id).with_for_update()
    )


SQLITE: Dialect = SqliteDialect()
POSTGRESQL: Dialect = PostgresDialect()


def dialect_for(url: str) -> tuple[str, Dialect]:
    """The async driver URL and the dialect of a user-facing URL (`sqlite:///file.db`,
    `postgresql://…`)."""
    if url.startswith("sqlite"):
        return "sqlite+aiosqlite:" + url.split(":", 1)[1], SQLITE
    if url.startswith(("postgresql", "postgres")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1], POSTGRESQL
    raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]!r}")
