"""`hubbub copy-db --from URL --to URL`: every row of one hubbub database copied into
another (SQLite to PostgreSQL, to outgrow one process; or back), then checked.

1. A missing source (no such file or database, or no hubbub schema in it) is refused
   before anything is written; so is a target that holds any row, unless `--force`, which
   empties it first, in the copy's transaction: a copy never merges into other data.
2. Both are migrated to the head revision, so both have the same columns.
3. The source is read in one read-only transaction, a snapshot: what a server still
   writing adds is not copied, but cannot make the copy disagree with itself. Each table
   is streamed in batches of `batch_size` rows, so memory stays bounded however many.
4. The target is written in one transaction and checked before it commits: the row count
   of every table, and per conversation its version counter, its number of messages and
   their highest version. Any difference rolls the copy back.

So the target ends as an exact copy of the source's snapshot, or as it was.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Table, func, inspect, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hubbub.adapters.sql.dialect import Dialect, dialect_for
from hubbub.adapters.sql.migrate import upgrade
from hubbub.adapters.sql.schema import conversations, messages, metadata
from hubbub.setting_types import DATABASE_SCHEMES
from hubbub.settings_sources import mask

# Rows per read and per multi-row INSERT: large enough that a round trip is amortised,
# small enough that a batch of messages at their largest (64 KiB frames) stays a few MB.
BATCH_SIZE = 1000
# Parents before children, should a foreign key ever be declared.
TABLES: Sequence[Table] = metadata.sorted_tables
VERSION_TABLE = "alembic_version"


class Refused(Exception):
    """Nothing was done: the databases are not fit to copy between (exit status 2)."""


class Failed(Exception):
    """The copy failed and was rolled back: the target is as it was (exit status 1)."""


class Mismatch(Failed):
    """The copy differs from the source."""

    def __init__(self, differences: list[str]) -> None:
        super().__init__("the copy differs from the source: " + "; ".join(differences))
        self.differences = differences


@dataclass
class Copied:
    """What a finished copy moved, for the summary."""

    rows: dict[str, int] = field(default_factory=dict)
    conversations: int = 0
    seconds: float = 0.0

    def summary(self) -> list[str]:
        width = max(len(name) for name in self.rows)
        lines = [f"{name:<{width}}  {count:>10,} rows" for name, count in self.rows.items()]
        lines.append(f"verified: every table's row count; for {self.conversations:,} "
                     "conversations their version, message count and highest message "
                     f"version ({self.seconds:.1f} s)")
        return lines


def shown(url: str) -> str:
    """A URL as messages show it: without its password."""
    return mask("database_url", url)


async def copy_database(source_url: str, target_url: str, *, force: bool = False,
                        batch_size: int = BATCH_SIZE) -> Copied:
    """Copy every row from `source_url` into `target_url` and check it.

    Raises:
        Refused: before anything was written.
        Failed: the copy failed, or its check did (`Mismatch`); the target is as it was.
    """
    for url in (source_url, target_url):
        if not url.startswith(DATABASE_SCHEMES):
            raise Refused(f"{shown(url)} is not a sqlite:///PATH or postgresql://… URL")
    if source_url == target_url:
        raise Refused("the source and the target are the same database")
    _check_source_exists(source_url)
    source, source_dialect = _open(source_url)
    target, target_dialect = _open(target_url)
    try:
        if VERSION_TABLE not in await _tables(source, "source", source_url):
            raise Refused(f"the source {shown(source_url)} holds no hubbub database "
                          f"(no {VERSION_TABLE} table)")
        occupied = await _occupied(target, await _tables(target, "target", target_url))
        if occupied and not force:
            raise Refused(f"the target {shown(target_url)} is not empty "
                          f"({', '.join(occupied)} hold rows): copy into an empty "
                          "database, or pass --force to replace its contents")
        await upgrade(source, source_dialect)
        await upgrade(target, target_dialect)
        started = time.perf_counter()
        copied = await _copy(source, target, source_dialect, target_dialect, bool(occupied),
                             batch_size)
        copied.seconds = time.perf_counter() - started
        return copied
    except (OSError, SQLAlchemyError) as exc:
        raise Failed(_reason(exc)) from exc
    finally:
        await source.dispose()
        await target.dispose()


def _open(url: str) -> tuple[AsyncEngine, Dialect]:
    driver_url, dialect = dialect_for(url)
    return dialect.create_engine(driver_url), dialect


def _check_source_exists(url: str) -> None:
    """SQLite makes a missing file on connecting: say it is missing instead."""
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        if not path.is_file():
            raise Refused(f"the source {url} does not exist")


async def _tables(engine: AsyncEngine, role: str, url: str) -> set[str]:
    """The tables of a database, which must open."""
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    except (OSError, SQLAlchemyError) as exc:
        raise Refused(f"cannot open the {role} {shown(url)}: {_reason(exc)}") from None


async def _occupied(engine: AsyncEngine, names: set[str]) -> list[str]:
    """hubbub's tables that hold a row."""
    async with engine.connect() as conn:
        return [t.name for t in TABLES if t.name in names and await _has_rows(conn, t)]


def _reason(exc: BaseException) -> str:
    """The driver's own words, not SQLAlchemy's wrapping of them (never parameters)."""
    orig = getattr(exc, "orig", None) or exc
    return str(orig).splitlines()[0] if str(orig) else type(orig).__name__


async def _copy(source: AsyncEngine, target: AsyncEngine, source_dialect: Dialect,
                target_dialect: Dialect, empty: bool, batch_size: int) -> Copied:
    """Within one snapshot of the source and one transaction of the target (emptied
    first when `empty`): every table, then the check."""
    copied = Copied()
    async with source.connect() as src, target.connect() as dst:
        await source_dialect.begin_snapshot(src)
        async with dst.begin():
            if empty:
                await target_dialect.empty_tables(dst, TABLES)
            for table in TABLES:
                copied.rows[table.name] = await _copy_table(src, dst, table, batch_size)
            await target_dialect.continue_sequences(dst, TABLES)
            copied.conversations = await verify(src, dst)
    return copied


async def _has_rows(conn: AsyncConnection, table: Table) -> bool:
    return (await conn.execute(select(1).select_from(table).limit(1))).first() is not None


async def _copy_table(src: AsyncConnection, dst: AsyncConnection, table: Table,
                      batch_size: int) -> int:
    # In the order rows are stored (no ORDER BY): a sequential read, not an index walk.
    result = await src.stream(select(table).execution_options(yield_per=batch_size))
    names = list(result.keys())
    count = 0
    async for rows in result.partitions(batch_size):
        await dst.execute(table.insert(), [dict(zip(names, row, strict=True)) for row in rows])
        count += len(rows)
    return count


async def verify(src: AsyncConnection, dst: AsyncConnection) -> int:
    """Compare the two; the number of conversations checked.

    Raises:
        Mismatch: naming each difference.
    """
    differences: list[str] = []
    for table in TABLES:
        query = select(func.count()).select_from(table)
        here, there = (await src.scalar(query)), (await dst.scalar(query))
        if here != there:
            differences.append(f"{table.name}: {here} rows in the source, {there} in the "
                               "target")
    expected, found = await _per_conversation(src), await _per_conversation(dst)
    for conversation_id in sorted(expected.keys() | found.keys()):
        was, now = expected.get(conversation_id), found.get(conversation_id)
        if was != now:
            differences.append(f"conversation {conversation_id}: (version, messages, "
                               f"highest message version) {was} in the source, {now} in "
                               "the target")
    if differences:
        raise Mismatch(differences)
    return len(expected)


async def _per_conversation(conn: AsyncConnection) -> dict[str, tuple[Any, ...]]:
    """`{conversation id: (version, messages, highest message version)}`: memory by
    conversations, not by messages."""
    found = {row.id: (row.version, 0, None)
             for row in await conn.execute(select(conversations.c.id,
                                                  conversations.c.version))}
    per_messages = select(messages.c.conversation_id, func.count(),
                          func.max(messages.c.version)).group_by(messages.c.conversation_id)
    for conversation_id, count, highest in await conn.execute(per_messages):
        version = found.get(conversation_id, (None,))[0]
        found[conversation_id] = (version, count, highest)
    return found
