"""PostgreSQL's rank window begins its search at a created_at floor (docs/DECISIONS.md,
"Rank window on PostgreSQL"): a guess from the planner's statistics that changes what a
search reads, never what it answers. On a database of its own, so that its statistics
are this corpus's: every page through every window is the same with the estimated floor,
with none, and with floors too high to hold a window (which the search must notice)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hubbub.adapters.sql import SearchLimits
from hubbub.adapters.sql.dialect import PostgresDialect
from hubbub.adapters.sql.lexemes import lexemes
from hubbub.adapters.sql.schema import messages
from hubbub.adapters.sql.search import SqlSearchStore
from hubbub.adapters.sql.search_words import WindowRead
from hubbub.domain.models import SearchPage
from tests.contract.test_store_features import now
from tests.support.bulk import Room, bulk_load, new_user_ids
from tests.support.services import create_postgres_database, drop_postgres_database
from tests.support.stores import SqlStores, open_stores

pytestmark = pytest.mark.asyncio(loop_scope="session")

WORD = "floorword"
WINDOW = 40
PER_ROOM = 2_000


class Recorded(PostgresDialect):
    """PostgreSQL's dialect, keeping each floor it chose."""

    def __init__(self) -> None:
        self.floors: list[Any] = []

    async def window_read(self, conn: AsyncConnection, words: Sequence[str],
                          matches: Select[Any], top: Sequence[Any] | None,
                          wanted: int) -> WindowRead:
        read = await super().window_read(conn, words, matches, top, wanted)
        self.floors.append(read.floor)
        return read


class Fixed(PostgresDialect):
    """PostgreSQL's dialect with a floor of the test's choosing (None: none)."""

    def __init__(self, floor: int | None) -> None:
        self.floor = floor

    async def window_read(self, conn: AsyncConnection, words: Sequence[str],
                          matches: Select[Any], top: Sequence[Any] | None,
                          wanted: int) -> WindowRead:
        return WindowRead(self.floor, indexed=True)


def content(_room: int, seq: int) -> str:
    """Every fifth message holds WORD, among 0–3 other words (scores vary)."""
    rest = " ".join(["other"] * (seq % 4))
    return f"{WORD} {rest}" if seq % 5 == 0 else f"nothing {rest} {seq}"


@pytest_asyncio.fixture(loop_scope="session")
async def corpus() -> AsyncIterator[tuple[SqlStores, str]]:
    """Four groups of PER_ROOM messages, the searcher in two of them, analysed."""
    database = await create_postgres_database()
    store = await open_stores(database.url)
    searcher, other = new_user_ids(2)
    rooms = [Room([other, searcher] if i < 2 else [other], PER_ROOM, content=content)
             for i in range(4)]
    try:
        await bulk_load(database.url, [searcher, other], rooms, start_us=now())
        yield store, searcher
    finally:
        await store.close()
        await drop_postgres_database(database)


async def every_page(engine: AsyncEngine, dialect: PostgresDialect,
                     searcher: str) -> list[tuple[list[str], bool]]:
    search = SqlSearchStore(engine, dialect, SearchLimits(rank_window=WINDOW))
    pages: list[SearchPage] = [await search.search(searcher, WORD, None, 30, mode="words")]
    while pages[-1].next_cursor is not None:
        assert len(pages) < 100, "the cursor does not end"
        pages.append(await search.search(searcher, WORD, None, 30, mode="words",
                                         cursor=pages[-1].next_cursor))
    return [([m.id for m in page.messages], page.truncated) for page in pages]


async def test_the_estimated_floor_answers_as_no_floor_does(
        corpus: tuple[SqlStores, str]) -> None:
    store, searcher = corpus
    recorded = Recorded()
    with_floor = await every_page(store.engine, recorded, searcher)
    assert recorded.floors[0] is not None, "the statistics did not give a first floor"
    assert sum(floor is not None for floor in recorded.floors) > len(recorded.floors) // 2
    without = await every_page(store.engine, Fixed(None), searcher)
    assert with_floor == without
    ids = [i for page, _truncated in without for i in page]
    assert len(ids) == len(set(ids)) == 2 * PER_ROOM // 5


async def test_the_statistics_bound_a_word_by_its_messages(
        corpus: tuple[SqlStores, str]) -> None:
    """WORD is in a fifth of the 8,000 messages; a word never written in none (but for
    the least share the statistics list, which an unlisted word may have)."""
    store, _searcher = corpus
    async with store.engine.connect() as conn:
        known = await lexemes(conn)
    assert known is not None
    assert 1_500 <= known.at_most([WORD]) <= 1_700
    assert known.at_most(["neverwritten"]) < 50


async def test_a_floor_holding_less_than_a_window_is_noticed(
        corpus: tuple[SqlStores, str]) -> None:
    """Above the newest messages' time only a few matches, above the far future none:
    the search answers as without a floor."""
    store, searcher = corpus
    async with store.engine.connect() as conn:
        newest = (await conn.execute(select(func.max(messages.c.created_at)))).scalar_one()
    without = await every_page(store.engine, Fixed(None), searcher)
    for floor in (newest - 30_000_000, newest + 10**12):
        assert await every_page(store.engine, Fixed(floor), searcher) == without
