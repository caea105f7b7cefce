"""The words search of the SearchStore seam on SQLite and PostgreSQL, on a store large
enough that filtering after the fact would show: the scope is part of the statement, and
the time budget holds for the full-text statement too."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from hubbub.adapters.sql import SearchLimits
from hubbub.adapters.sql.schema import messages
from tests.conftest import Backend
from tests.contract.test_store_bounds import capped
from tests.contract.test_store_features import conversation, now, send, user
from tests.support.bulk import Room, bulk_load
from tests.support.stores import SqlStores

pytestmark = pytest.mark.asyncio(loop_scope="session")

CROWD = 5_000


async def crowd_saying(backend: Backend, word: str) -> None:
    """CROWD messages that are `word` and little else (so they rank above any the
    searcher has), newer than the searcher's, in a group the searcher is not in."""
    other = str(uuid.uuid4())
    await bulk_load(backend.database_url, [other],
                    [Room([other], CROWD, content=lambda _room, seq: f"{word} {word} {seq}")],
                    start_us=now() + 1_000_000)


async def test_the_limit_counts_only_readable_messages(store: SqlStores,
                                                       backend: Backend) -> None:
    """Thousands of better, newer matches elsewhere do not crowd the searcher's own out of
    the page: the scope is applied before ranking and limiting, not after."""
    word = "w" + uuid.uuid4().hex[:10]
    searcher = await user(store)
    room = await conversation(store, searcher, "group")
    mine = [await send(store, room, searcher, f"{word} among several other words {n}")
            for n in range(3)]
    await crowd_saying(backend, word)
    page = await store.search(searcher, word, None, 2, mode="words")
    assert ([m.conversation_id for m in page.messages], page.truncated) == ([room] * 2, False)
    rest = await store.search(searcher, word, None, 2, mode="words", cursor=page.next_cursor)
    assert {m.id for m in page.messages + rest.messages} == {m.id for m in mine}
    assert rest.next_cursor is None


async def test_a_words_search_past_its_deadline_is_truncated(store: SqlStores,
                                                             backend: Backend) -> None:
    """With no time left, the ranking statement is stopped by the database's deadline
    (progress handler, statement_timeout) and the answer is empty and `truncated`, not an
    error; with time, the same search answers in full."""
    word = "w" + uuid.uuid4().hex[:10]
    await crowd_saying(backend, word)
    reader = await user(store)
    crowd_room = await crowd_room_of(store, word)
    # By id, as for a channel (the service checks access; the store is told the scope);
    # a rank window holding every match, so only the deadline could truncate.
    whole = capped(store, search=SearchLimits(rank_window=CROWD))
    full = await whole.search(reader, word, crowd_room, 50, mode="words")
    assert (len(full.messages), full.truncated) == (50, False)
    hasty = capped(store, search=SearchLimits(timeout_s=0.0))
    stopped = await hasty.search(reader, word, crowd_room, 50, mode="words")
    assert (stopped.messages, stopped.truncated, stopped.next_cursor) == ([], True, None)


async def crowd_room_of(store: SqlStores, word: str) -> str:
    """The conversation the crowd said `word` in."""
    async with store.engine.connect() as conn:
        room: str = (await conn.execute(select(messages.c.conversation_id).where(
            messages.c.content == f"{word} {word} 1"))).scalar_one()
    return room
