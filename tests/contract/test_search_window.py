"""The rank window of the words search (docs/DECISIONS.md, "Rank window") on SQLite and
PostgreSQL: only the newest `rank_window` matches in scope are ranked, the answer says so
with `truncated`, and the cursor goes on window by window, older each time, with no
message repeated or skipped and none from outside the scope."""

from __future__ import annotations

import uuid

import pytest

from hubbub.adapters.sql import SearchLimits
from hubbub.domain.models import Message, SearchPage
from tests.contract.test_store_bounds import capped
from tests.contract.test_store_features import conversation, send, user
from tests.support.stores import SqlStores

pytestmark = pytest.mark.asyncio(loop_scope="session")

WINDOW = 3


async def saying(store: SqlStores, room: str, sender: str, word: str,
                 fillers: list[int]) -> list[Message]:
    """One message per entry, oldest first, holding `word` among that many other words
    (fewer others: a better match)."""
    return [await send(store, room, sender, " ".join([word, *["filler"] * n]))
            for n in fillers]


async def every_page(store: SqlStores, reader: str, word: str,
                     limit: int) -> list[SearchPage]:
    pages = [await store.search(reader, word, None, limit, mode="words")]
    while pages[-1].next_cursor is not None:
        assert len(pages) < 20, "the cursor does not end"
        pages.append(await store.search(reader, word, None, limit, mode="words",
                                        cursor=pages[-1].next_cursor))
    return pages


async def test_only_the_newest_window_is_ranked_and_paging_goes_window_by_window(
        store: SqlStores) -> None:
    """Seven matches, a window of three: the best match overall (the oldest) is not in
    the first window; each window is ranked best first, the windows come newest first,
    every match exactly once; `truncated` while older matches remain."""
    word = "w" + uuid.uuid4().hex[:10]
    reader = await user(store)
    room = await conversation(store, reader, "group")
    sent = await saying(store, room, reader, word, [0, 5, 6, 1, 4, 2, 3])
    windowed = capped(store, search=SearchLimits(rank_window=WINDOW))
    pages = await every_page(windowed, reader, word, 2)
    ids = [[m.id for m in page.messages] for page in pages]
    by = {m.id: i for i, m in enumerate(sent)}
    # Windows: sent[4:7] (fillers 4, 2, 3), sent[1:4] (5, 6, 1), sent[0:1] (0).
    assert [[by[i] for i in page] for page in ids] == [[5, 6], [4], [3, 1], [2], [0]]
    assert [page.truncated for page in pages] == [True, True, True, True, False]
    flat = [i for page in ids for i in page]
    assert sorted(flat) == sorted(m.id for m in sent)


async def test_a_window_that_holds_every_match_is_not_truncated(store: SqlStores) -> None:
    """Exactly `rank_window` matches: one window, ranked, nothing beyond it."""
    word = "w" + uuid.uuid4().hex[:10]
    reader = await user(store)
    room = await conversation(store, reader, "group")
    sent = await saying(store, room, reader, word, [2, 0, 1])
    windowed = capped(store, search=SearchLimits(rank_window=WINDOW))
    pages = await every_page(windowed, reader, word, 10)
    assert [([m.id for m in p.messages], p.truncated) for p in pages] == [
        ([sent[1].id, sent[2].id, sent[0].id], False)]


async def test_the_window_counts_only_readable_messages(store: SqlStores) -> None:
    """Newer matches in a conversation the reader is not in take no place in her window,
    and never appear on any page."""
    word = "w" + uuid.uuid4().hex[:10]
    reader, other = await user(store), await user(store)
    mine = await conversation(store, reader, "group")
    theirs = await conversation(store, other, "group")
    own = await saying(store, mine, reader, word, [1, 2, 3, 4])
    await saying(store, theirs, other, word, [0] * 5)
    windowed = capped(store, search=SearchLimits(rank_window=WINDOW))
    pages = await every_page(windowed, reader, word, 2)
    seen = [m for page in pages for m in page.messages]
    assert {m.conversation_id for m in seen} == {mine}
    assert [m.id for m in seen] == [own[1].id, own[2].id, own[3].id, own[0].id]


async def test_newer_messages_do_not_shift_the_window_being_paged(store: SqlStores) -> None:
    """The first page fixes its window's top: a better match sent after it is not part
    of the pages that follow, which still reach every message of the window. (bm25's
    scores move with the index, so only an unchanged index guarantees no repeat.)"""
    word = "w" + uuid.uuid4().hex[:10]
    reader = await user(store)
    room = await conversation(store, reader, "group")
    sent = await saying(store, room, reader, word, [3, 2, 1])
    windowed = capped(store, search=SearchLimits(rank_window=WINDOW))
    first = await windowed.search(reader, word, None, 1, mode="words")
    late = await saying(store, room, reader, word, [0])
    rest = await every_page_from(windowed, reader, word, first)
    assert late[0].id not in {m.id for m in rest}
    assert {m.id for m in first.messages + rest} == {m.id for m in sent}


async def every_page_from(store: SqlStores, reader: str, word: str,
                          first: SearchPage) -> list[Message]:
    found: list[Message] = []
    page = first
    while page.next_cursor is not None:
        page = await store.search(reader, word, None, 1, mode="words",
                                  cursor=page.next_cursor)
        found += page.messages
    return found
