"""The Store seam's guards against races and unbounded work, on SQLite and PostgreSQL:
a join never overwrites a ban, search considers a bounded number of messages, and
`unread_count` saturates at its cap."""

from __future__ import annotations

import pytest

from hubbub.domain.models import Membership
from hubbub.storage.sql import SEARCH_SCAN_LIMIT, UNREAD_COUNT_CAP, SqlStore
from tests.contract.test_store_features import conversation, now, send, user

pytestmark = pytest.mark.asyncio(loop_scope="session")


def capped(store: SqlStore, **caps: int) -> SqlStore:
    """A second store on the same engine with smaller caps (reads only: it never writes,
    so its writer never starts, and closing the fixture's store disposes the engine)."""
    return SqlStore(store.engine, store.dialect, **caps)


async def test_add_member_if_absent_never_lifts_a_ban(store: SqlStore) -> None:
    """A join racing a ban leaves the ban in place and reports the existing row."""
    owner, joiner = await user(store), await user(store)
    room = await conversation(store, owner, "channel")
    await store.put_member(room, joiner, "banned", now())
    member, created = await store.add_member_if_absent(room, joiner, "member", now())
    assert not created
    assert member.role == "banned"
    assert await store.get_membership(room, joiner) == Membership("banned", False)


async def test_add_member_if_absent_adds_once(store: SqlStore) -> None:
    """The first call creates the membership, a repeat finds it unchanged."""
    owner, joiner = await user(store), await user(store)
    room = await conversation(store, owner, "channel")
    first, created = await store.add_member_if_absent(room, joiner, "member", now())
    assert created
    assert first.role == "member"
    await store.put_member(room, joiner, "read_only", now())
    again, created_again = await store.add_member_if_absent(room, joiner, "member", now())
    assert not created_again
    assert (again.role, again.joined_at) == ("read_only", first.joined_at)


async def test_unread_count_saturates_at_the_cap(store: SqlStore) -> None:
    """Counts are exact below the cap and stop at it."""
    owner, reader = await user(store), await user(store)
    room = await conversation(store, owner, "group", [reader])
    for i in range(4):
        await send(store, room, owner, f"message {i}")
    [exact] = await store.list_conversations(reader, room)
    assert exact.unread_count == 4 < UNREAD_COUNT_CAP
    [saturated] = await capped(store, unread_count_cap=3).list_conversations(reader, room)
    assert saturated.unread_count == 3
    [at_cap] = await capped(store, unread_count_cap=4).list_conversations(reader, room)
    assert at_cap.unread_count == 4


async def test_search_scan_considers_the_newest_messages(store: SqlStore) -> None:
    """Where no index helps (a two-letter query: SQLite, and PostgreSQL without a trigram),
    only the newest `search_scan_limit` live messages of the scope are matched."""
    owner = await user(store)
    room = await conversation(store, owner, "group")
    old = await send(store, room, owner, "zq old")
    await send(store, room, owner, "filler one")
    newer = await send(store, room, owner, "zq new")
    await send(store, room, owner, "filler two")
    full = await store.search(owner, "ZQ", room, 50)
    assert [m.id for m in full] == [newer.id, old.id]
    assert SEARCH_SCAN_LIMIT >= 50_000
    small = capped(store, search_scan_limit=3)
    assert [m.id for m in await small.search(owner, "zq", room, 50)] == [newer.id]
    # Across conversations the scope holds every public channel, whose newer messages may
    # push this room's out of the window too: only the older match's absence is certain.
    assert old.id not in {m.id for m in await small.search(owner, "zq", None, 50)}
