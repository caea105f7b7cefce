"""What the hub's repair reads through `ChangeFeed` (services/changes.py), on SQLite and
PostgreSQL alike: the stored versions of many conversations in one call, and changes after
a version that end exactly at the stored version."""

from __future__ import annotations

import asyncio

import pytest

from hubbub.services.changes import ChangeFeed
from tests.contract.test_connection_reads import statements
from tests.contract.test_store_features import conversation, new_id, now, send, user
from tests.support.stores import SqlStores

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_current_versions_of_many_conversations(store: SqlStores) -> None:
    """Each conversation's version as its changes left it; unknown ids are left out."""
    feed = ChangeFeed(store.stores.messages, store.stores.conversations)
    owner = await user(store)
    quiet, busy = await conversation(store, owner), await conversation(store, owner)
    first = await send(store, busy, owner, "one")
    await send(store, busy, owner, "two")
    await store.edit(first.id, "one, edited", now())
    await store.add_reaction(first.id, owner, "👍", now())
    versions = await feed.current_versions([quiet, busy, new_id()])
    assert versions == {quiet: 0, busy: 4}
    assert await feed.current_versions([]) == {}


async def test_changes_since_end_at_the_stored_version(store: SqlStores) -> None:
    """Every version is a message's version, so reading the changes after any version
    reaches the conversation's stored version: a repair that ends there missed nothing."""
    feed = ChangeFeed(store.stores.messages, store.stores.conversations)
    owner = await user(store)
    room = await conversation(store, owner)
    messages = [await send(store, room, owner, f"m{n}") for n in range(4)]
    await store.edit(messages[0].id, "edited", now())
    await store.delete(messages[1].id, owner, now())
    await store.add_reaction(messages[2].id, owner, "👍", now())
    stored = (await feed.current_versions([room]))[room]
    assert stored == 7
    for after in range(stored + 1):
        page = await feed.changes_since(room, after, 100)
        assert page.last_version == stored
        assert all(m.version > after for m in page.messages)
    latest = await feed.changes_since(room, 4, 100)
    assert [(m.id, m.version) for m in latest.messages] == [
        (messages[0].id, 5), (messages[1].id, 6), (messages[2].id, 7)]


async def test_syncs_asked_together_share_one_read_each_page(store: SqlStores) -> None:
    """A room's members reconnecting together ask for the same page: it is read once, and
    every one of them gets it; a different page in the same batch is read for its own."""
    owner = await user(store)
    room = await conversation(store, owner)
    sent = [await send(store, room, owner, f"m{n}") for n in range(6)]
    messages = store.stores.messages
    with statements(store) as seen:
        pages = await asyncio.gather(*(messages.sync(room, 3, None, 100) for _ in range(20)),
                                     messages.sync(room, 5, None, 100))
    assert [[m.id for m in page.messages] for page in pages[:20]] == \
        [[m.id for m in sent[3:]]] * 20
    assert [m.id for m in pages[20].messages] == [sent[5].id]
    assert all(page.last_version == 6 for page in pages)
    reads = [s for s in seen if "FROM messages" in s]
    assert len(reads) == 2, seen


async def test_a_sync_asked_after_a_commit_sees_it_while_an_identical_read_runs(
        store: SqlStores) -> None:
    """A sync never shares a read that began before it asked: a reconnecting client that
    asks after a message committed gets it, though the same page was being read."""
    owner = await user(store)
    room = await conversation(store, owner)
    await send(store, room, owner, "before")
    messages = store.stores.messages
    for _ in range(5):  # the earlier read still running or done: either way, seen
        earlier = asyncio.ensure_future(messages.sync(room, 0, None, 100))
        await asyncio.sleep(0)
        late = await send(store, room, owner, "after")
        page = await messages.sync(room, 0, None, 100)
        assert late.id in [m.id for m in page.messages]
        await earlier
