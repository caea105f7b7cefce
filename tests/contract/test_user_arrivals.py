"""First sightings of users (adapters/sql/arrivals.py), on SQLite and PostgreSQL: users
who arrive together are written together, each comes back as stored, and two instances
that see the same new users at once neither fail nor lose a row."""

from __future__ import annotations

import asyncio
import itertools
import uuid

import pytest

from tests.support.stores import SqlStores

pytestmark = pytest.mark.asyncio(loop_scope="session")

_clock = itertools.count(1_950_000_000_000_000)


async def test_users_arriving_together_share_a_write(store: SqlStores) -> None:
    ids = [f"storm-{uuid.uuid4()}" for _ in range(40)]
    jobs_before = store.writer.jobs
    at = next(_clock)
    users = await asyncio.gather(*(store.upsert_user(uid, f"Name {n}", at)
                                   for n, uid in enumerate(ids)))
    assert [(u.id, u.name, u.created_at) for u in users] == [
        (uid, f"Name {n}", at) for n, uid in enumerate(ids)]
    for n, uid in enumerate(ids):
        stored = await store.get_user(uid)
        assert stored is not None
        assert stored.name == f"Name {n}"
    if not store.writer.orders_locks:  # SQLite; PostgreSQL writes them apart from batches
        assert store.writer.jobs - jobs_before <= 2  # the first arrival, then the rest


async def test_one_user_arriving_thrice_at_once_gets_one_row(
        store: SqlStores) -> None:
    uid = f"twice-{uuid.uuid4()}"
    first, second, nameless = await asyncio.gather(
        store.upsert_user(uid, "Ann", next(_clock)), store.upsert_user(uid, "Anna", next(_clock)),
        store.upsert_user(uid, None, next(_clock)))
    assert first.id == second.id == nameless.id == uid
    stored = await store.get_user(uid)
    assert stored is not None
    # Which of two names given at once wins is not defined; a token without one renames
    # nobody, and every call comes back with a row.
    assert stored.name in {"Ann", "Anna"}
    assert {first.name, second.name, nameless.name} <= {"Ann", "Anna"}


async def test_a_known_user_is_read_and_a_renamed_one_written(store: SqlStores) -> None:
    uid = f"known-{uuid.uuid4()}"
    created = await store.upsert_user(uid, "Kim", next(_clock))
    again = await store.upsert_user(uid, None, next(_clock))  # no name: keeps "Kim"
    assert (again.name, again.created_at) == ("Kim", created.created_at)
    renamed = await store.upsert_user(uid, "Kimberly", next(_clock))
    assert renamed.name == "Kimberly"
    stored = await store.get_user(uid)
    assert stored is not None
    assert stored.name == "Kimberly"


async def test_two_instances_seeing_the_same_new_users_at_once(
        two_instances: tuple[SqlStores, SqlStores]) -> None:
    first, second = two_instances
    ids = [f"both-{uuid.uuid4()}" for _ in range(30)]
    at = next(_clock)
    seen = await asyncio.gather(
        *(first.upsert_user(uid, "from first", at) for uid in ids),
        *(second.upsert_user(uid, "from second", at) for uid in reversed(ids)))
    assert {u.id for u in seen} == set(ids)
    for uid in ids:
        stored = await first.get_user(uid)
        assert stored is not None
        assert stored.name in {"from first", "from second"}
