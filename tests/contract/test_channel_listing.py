"""`ConversationStore.list_channels` (the channel directory) on SQLite and PostgreSQL alike:
only channels, the name filter, the code point order and its keyset, the counts."""

from __future__ import annotations

import itertools
import uuid

import pytest

from tests.support.stores import SqlStores

pytestmark = pytest.mark.asyncio(loop_scope="session")

_clock = itertools.count(1_900_000_000_000_000)


def new_id() -> str:
    return str(uuid.uuid4())


async def user(store: SqlStores) -> str:
    user_id = new_id()
    await store.upsert_user(user_id, None, next(_clock))
    return user_id


async def test_only_channels_by_code_point_order_with_keyset(store: SqlStores) -> None:
    """Groups and directs never appear; names sort by code point (`Z` < `a` < `é`), ties by
    id; `after` resumes strictly after a (name, id) and a page never repeats a row."""
    tag = uuid.uuid4().hex[:8]
    owner, other = await user(store), await user(store)
    names = [f"{tag}-alpha", f"{tag}-Zeta", f"{tag}-été", f"{tag}-alpha", f"{tag}-beta"]
    ids = []
    for name in names:
        ids.append(new_id())
        await store.create_conversation(ids[-1], "channel", name, owner, [], next(_clock))
    await store.create_conversation(new_id(), "group", f"{tag}-group", owner, [other],
                                    next(_clock))
    await store.create_conversation(new_id(), "direct", None, owner, [other], next(_clock))
    listed = await store.list_channels(other, tag, None, 100)
    expected = sorted(zip(names, ids, strict=True))
    assert [(c.name, c.id) for c in listed] == expected
    assert [c.name for c in listed][:1] == [f"{tag}-Zeta"]
    first = await store.list_channels(other, tag, None, 2)
    rest = await store.list_channels(other, tag, (first[-1].name, first[-1].id), 10)
    assert [c.id for c in first + rest] == [i for _, i in expected]


async def test_filter_ignores_case_and_wildcards(store: SqlStores) -> None:
    tag = uuid.uuid4().hex[:8]
    owner = await user(store)
    for name in (f"{tag} Design Team", f"{tag} 100% done", f"{tag} 100x done"):
        await store.create_conversation(new_id(), "channel", name, owner, [], next(_clock))
    assert [c.name for c in await store.list_channels(owner, f"{tag} dESIGN", None, 10)
            ] == [f"{tag} Design Team"]
    assert [c.name for c in await store.list_channels(owner, f"{tag} 100%", None, 10)
            ] == [f"{tag} 100% done"]


async def test_counts_membership_and_banned(store: SqlStores) -> None:
    """`member_count` leaves the banned out; `is_member` is the caller's; a channel the
    caller is banned from is not listed for it."""
    tag = uuid.uuid4().hex[:8]
    owner, member, banned, stranger = [await user(store) for _ in range(4)]
    room = new_id()
    await store.create_conversation(room, "channel", f"{tag}-room", owner, [member, banned],
                                    next(_clock))
    await store.put_member(room, banned, "banned", next(_clock))
    [seen] = await store.list_channels(member, tag, None, 10)
    assert (seen.member_count, seen.is_member) == (2, True)
    [outside] = await store.list_channels(stranger, tag, None, 10)
    assert (outside.id, outside.is_member) == (room, False)
    assert await store.list_channels(banned, tag, None, 10) == []
