"""The Store seam's guards against races and unbounded work, on SQLite and PostgreSQL:
a join never overwrites a ban, search examines a bounded number of messages in a bounded
number of conversations, and `unread_count` saturates at its cap."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from typing import Any

import pytest
from sqlalchemy import Engine, event

from hubbub.adapters.sql import SearchLimits, SqlDatabase
from hubbub.adapters.sql.matching import register_sqlite_functions
from hubbub.adapters.sql.unread import UNREAD_COUNT_CAP
from hubbub.domain.models import Membership
from tests.conftest import Backend
from tests.contract.test_store_features import conversation, new_id, now, send, user
from tests.support.bulk import Room, bulk_load
from tests.support.stores import SqlStores

pytestmark = pytest.mark.asyncio(loop_scope="session")


def capped(store: SqlStores, **caps: Any) -> SqlStores:
    """A second store on the same engines with smaller caps (reads only: it never writes,
    so its writer never starts, and closing the fixture's store disposes the engines)."""
    return SqlStores(SqlDatabase(store.engine, store.dialect,
                                 search_engine=store.search_engine, **caps))


async def test_add_member_if_absent_never_lifts_a_ban(store: SqlStores) -> None:
    """A join racing a ban leaves the ban in place and reports the existing row."""
    owner, joiner = await user(store), await user(store)
    room = await conversation(store, owner, "channel")
    await store.put_member(room, joiner, "banned", now())
    member, created = await store.add_member_if_absent(room, joiner, "member", now())
    assert not created
    assert member.role == "banned"
    assert await store.get_membership(room, joiner) == Membership("banned", False)


async def test_add_member_if_absent_adds_once(store: SqlStores) -> None:
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


async def test_unread_count_saturates_at_the_cap(store: SqlStores) -> None:
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


async def test_search_examines_at_most_its_scan_limit(store: SqlStores) -> None:
    """A search examines the newest `scan_limit` messages of its scope, deleted ones
    included, and says it was cut short unless it found `limit` matches first."""
    owner = await user(store)
    room = await conversation(store, owner, "group")
    old = await send(store, room, owner, "zq old")
    await send(store, room, owner, "filler one")
    newer = await send(store, room, owner, "zq new")
    gone = await send(store, room, owner, "zq deleted")
    await store.delete(gone.id, owner, now())
    full = await store.search(owner, "ZQ", room, 50)
    assert ([m.id for m in full.messages], full.truncated) == ([newer.id, old.id], False)
    small = capped(store, search=SearchLimits(scan_limit=3))
    for conversation_id in (room, None):  # the owner's only membership: the same scope
        cut = await small.search(owner, "zq", conversation_id, 50)
        assert ([m.id for m in cut.messages], cut.truncated) == ([newer.id], True)
    enough = await small.search(owner, "zq", room, 1)
    assert ([m.id for m in enough.messages], enough.truncated) == ([newer.id], False)


async def test_search_covers_the_most_recently_active_conversations(store: SqlStores) -> None:
    """Without `conversation_id`, a search covers the user's most recently active
    conversations up to the cap, and is truncated when a conversation left out could
    hold a newer match than those found."""
    owner = await user(store)
    rooms = [await conversation(store, owner, "group") for _ in range(3)]
    found = [await send(store, room, owner, f"zq {i}") for i, room in enumerate(rooms)]
    two = capped(store, search=SearchLimits(conversations=2))
    both = await two.search(owner, "zq", None, 2)
    assert ([m.id for m in both.messages], both.truncated) == (
        [found[2].id, found[1].id], False)
    short = await two.search(owner, "zq", None, 50)
    assert ([m.id for m in short.messages], short.truncated) == (
        [found[2].id, found[1].id], True)
    # rooms[0] becomes the most recent and rooms[1], with a newer match than rooms[0]'s,
    # is left out: the answer is right for the rooms it covers, and says it is cut short.
    await send(store, rooms[0], owner, "newest, no match")
    moved = await two.search(owner, "zq", None, 2)
    assert ([m.id for m in moved.messages], moved.truncated) == (
        [found[2].id, found[0].id], True)


async def test_a_search_across_conversations_reads_only_the_searchers_own(
        store: SqlStores, backend: Backend) -> None:
    """What the database reads for a search across conversations follows the searcher's
    memberships: 60,000 more messages, in a group the searcher is not in and in a channel
    the searcher never joined, change it by next to nothing."""
    searcher, other = await user(store), new_id()
    for _ in range(2):
        room = await conversation(store, searcher, "group")
        for i in range(10):
            await send(store, room, searcher, f"small talk {i}")
    before = await database_work(store, backend, searcher)
    # Newer than everything the searcher has, so a walk of all messages newest first
    # meets them first.
    await bulk_load(backend.database_url, [other],
                    [Room([other], 30_000), Room([other], 30_000, kind="channel")],
                    start_us=now())
    after = await database_work(store, backend, searcher)
    assert after <= 2 * before + 1000, (before, after)


async def database_work(store: SqlStores, backend: Backend, user_id: str) -> int:
    """What the statements of one search across conversations cost the database, as the
    database counts it: rows of `messages` read (PostgreSQL, EXPLAIN ANALYZE) or
    virtual-machine steps (SQLite, a progress handler called at every step). The
    statements are captured as the store sends them and run again to be measured."""
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    event.listen(Engine, "before_cursor_execute", capture)
    try:
        await store.search(user_id, "zq", None, 50)
    finally:
        event.remove(Engine, "before_cursor_execute", capture)
    selects = [(s, p) for s, p in sent if s.lstrip("( \n").upper().startswith("SELECT")]
    assert selects, sent
    if backend.name == "sqlite":
        return await asyncio.to_thread(_sqlite_steps, backend.database_url, selects)
    return await _postgres_rows(backend.database_url, selects)


def _sqlite_steps(url: str, selects: list[tuple[str, Any]]) -> int:
    db = sqlite3.connect(url.split("///", 1)[1])
    steps = 0

    def step() -> int:
        nonlocal steps
        steps += 1
        return 0

    try:
        register_sqlite_functions(db, None)
        db.set_progress_handler(step, 1)
        for statement, parameters in selects:
            db.execute(statement, parameters).fetchall()
    finally:
        db.close()
    return steps


async def _postgres_rows(url: str, selects: list[tuple[str, Any]]) -> int:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        total = 0
        for statement, parameters in selects:
            plan = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + statement,
                                       *parameters)
            total += _messages_rows(json.loads(plan)[0]["Plan"])
    finally:
        await conn.close()
    return total


def _messages_rows(node: dict[str, Any]) -> int:
    """Rows the plan read from `messages`, kept or filtered out, over all its loops."""
    own = 0
    if node.get("Relation Name") == "messages":
        own = (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
               + node.get("Rows Removed by Index Recheck", 0)) * node.get("Actual Loops", 1)
    return int(own) + sum(_messages_rows(child) for child in node.get("Plans", ()))
