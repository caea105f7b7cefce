"""The user store with the backend's ids (PROTOCOL.md §2), on SQLite and PostgreSQL alike:
128-character ids fit every user id column, and a member who never connected gets a row
without touching one that exists."""

from __future__ import annotations

import itertools
import uuid

import pytest

from tests.support.stores import SqlStores

pytestmark = pytest.mark.asyncio(loop_scope="session")

_clock = itertools.count(1_900_000_000_000_000)
LONGEST = "auth0|" + "z" * 122


async def test_ensure_users_makes_missing_rows_and_leaves_known_ones(store: SqlStores) -> None:
    known, fresh = f"known-{uuid.uuid4()}", f"fresh-{uuid.uuid4()}"
    await store.upsert_user(known, "Kim", next(_clock))
    at = next(_clock)
    await store.ensure_users([known, fresh, fresh], at)
    kim, newcomer = await store.get_user(known), await store.get_user(fresh)
    assert kim is not None
    assert kim.name == "Kim"
    assert newcomer is not None
    assert (newcomer.name, newcomer.created_at, newcomer.last_seen) == (
        f"user-{fresh[:8]}", at, None)
    await store.ensure_users([], next(_clock))  # nothing to do, no statement


async def test_a_128_character_user_id_fits_every_column(store: SqlStores) -> None:
    """Users and members, through a direct conversation of two such ids: one per pair."""
    other = LONGEST[:-1] + "y"
    await store.ensure_users([LONGEST, other], next(_clock))
    conversation, created = await store.create_conversation(
        str(uuid.uuid4()), "direct", None, LONGEST, [other], next(_clock))
    assert created
    again, created = await store.create_conversation(
        str(uuid.uuid4()), "direct", None, other, [LONGEST], next(_clock))
    assert (again.id, created) == (conversation.id, False)
    assert {m.user_id for m in await store.list_members(conversation.id)} == {LONGEST, other}
    assert await store.find_direct(other, LONGEST) == again
