"""Typing states (services/typing.py, adapters/redis/typing.py): every transition is decided
once, whichever instance asks, in memory and in Redis alike."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from hubbub.adapters.memory.typing import MemoryTypingStates
from hubbub.adapters.redis.client import connect
from hubbub.adapters.redis.topology import RedisClient
from hubbub.adapters.redis.typing import GRACE_MS, RedisTypingStates
from hubbub.coordination.typing import Key, TypingStates
from tests.support.redis_server import private_redis
from tests.support.services import REDIS_URL, check_redis

pytestmark = pytest.mark.asyncio(loop_scope="session")

TIMEOUT_S = 0.3


def new_key() -> Key:
    return str(uuid.uuid4()), str(uuid.uuid4())


@pytest_asyncio.fixture(params=["memory", "redis"], loop_scope="session")
async def instances(request: pytest.FixtureRequest) -> AsyncIterator[list[TypingStates]]:
    """Two instances' views of one deployment's typing states."""
    if request.param == "memory":
        shared = MemoryTypingStates()
        yield [shared, shared]
        return
    prefix = await check_redis()
    client = connect(REDIS_URL)
    try:
        yield [RedisTypingStates(client, prefix), RedisTypingStates(client, prefix)]
    finally:
        await client.aclose()


async def test_a_state_starts_once_and_refreshes_after(instances: list[TypingStates]) -> None:
    one, two = instances
    key = new_key()
    assert await one.start(key, "c1", TIMEOUT_S) is True
    assert await two.start(key, "c2", TIMEOUT_S) is False
    assert await one.start(key, "c1", TIMEOUT_S) is False


async def test_a_state_is_stopped_once(instances: list[TypingStates]) -> None:
    one, two = instances
    key = new_key()
    assert await two.stop(key) is False  # never started
    await one.start(key, "c1", TIMEOUT_S)
    assert await two.stop(key) is True
    assert await one.stop(key) is False
    assert await one.start(key, "c1", TIMEOUT_S) is True  # a new state after the end


async def test_the_last_holder_leaving_ends_the_state(instances: list[TypingStates]) -> None:
    one, two = instances
    key = new_key()
    await one.start(key, "c1", TIMEOUT_S)
    await two.start(key, "c2", TIMEOUT_S)
    assert await one.leave(key, "c3") is False  # never held it
    assert await one.leave(key, "c1") is False  # c2 still holds it
    assert await two.start(key, "c2", TIMEOUT_S) is False
    assert await two.leave(key, "c2") is True
    assert await two.leave(key, "c2") is False
    assert await one.start(key, "c1", TIMEOUT_S) is True


async def test_settling_reports_the_time_left_then_ends_once(
        instances: list[TypingStates]) -> None:
    one, two = instances
    key = new_key()
    await one.start(key, "c1", TIMEOUT_S)
    left = await two.settle(key)
    assert left is not None
    assert 0 < left <= TIMEOUT_S
    await asyncio.sleep(TIMEOUT_S + 0.05)
    results = await asyncio.gather(one.settle(key), two.settle(key), one.settle(key))
    assert sorted(results, key=lambda r: -1 if r is None else r) == [None, None, 0.0]
    assert await one.stop(key) is False


async def test_a_refresh_through_any_instance_moves_the_shared_deadline(
        instances: list[TypingStates]) -> None:
    one, two = instances
    key = new_key()
    await one.start(key, "c1", TIMEOUT_S)
    await asyncio.sleep(TIMEOUT_S * 0.6)
    await two.start(key, "c2", TIMEOUT_S)
    left = await one.settle(key)
    assert left is not None
    assert left > TIMEOUT_S * 0.6


async def test_settling_a_state_ended_elsewhere_tells_it_was_announced(
        instances: list[TypingStates]) -> None:
    """A stop or the last holder's leave ends the state; a later settle is told so (None:
    nothing left to announce)."""
    one, two = instances
    stopped, left = new_key(), new_key()
    for key in (stopped, left):
        await one.start(key, "c1", TIMEOUT_S)
    assert await two.stop(stopped) is True
    assert await two.leave(left, "c1") is True
    assert await one.settle(stopped) is None
    assert await one.settle(left) is None


@pytest_asyncio.fixture(loop_scope="session")
async def in_redis() -> AsyncIterator[tuple[RedisTypingStates, RedisClient, Callable[[Key], str]]]:
    """Redis typing states, a client of that Redis, and the Redis key of a state."""
    prefix = await check_redis()
    client = connect(REDIS_URL)
    try:
        yield (RedisTypingStates(client, prefix), client,
               lambda key: f"{prefix}:typing:{key[0]}:{key[1]}")
    finally:
        await client.aclose()


async def test_a_state_redis_lost_is_ended_by_whoever_settles_it(
        in_redis: tuple[RedisTypingStates, Redis, Callable[[Key], str]]) -> None:
    """A state whose key vanished (Redis restarted empty) had its end announced by nobody:
    the instance whose timer settles it is told it ended it, and announces it."""
    states, client, redis_key = in_redis
    key = new_key()
    await states.start(key, "c1", TIMEOUT_S)
    await client.delete(redis_key(key))
    assert await states.settle(key) == 0.0
    assert await states.start(key, "c1", TIMEOUT_S) is True  # a new state after it


async def test_a_redis_state_outlives_its_deadline_by_the_grace_only(
        in_redis: tuple[RedisTypingStates, Redis, Callable[[Key], str]]) -> None:
    """A state nobody settles (its instances crashed) disappears on its own."""
    states, client, redis_key = in_redis
    key = new_key()
    await states.start(key, "c1", TIMEOUT_S)
    ttl_ms = await client.pttl(redis_key(key))
    assert TIMEOUT_S * 1000 < ttl_ms <= TIMEOUT_S * 1000 + GRACE_MS


async def test_states_fall_back_to_this_process_while_redis_is_down(tmp_path: Path) -> None:
    """With Redis gone, typing still starts, refreshes, stops and expires per process."""
    async with private_redis(tmp_path) as (redis, client):
        states = RedisTypingStates(client, "down")
        before = new_key()
        assert await states.start(before, "c1", TIMEOUT_S) is True
        await redis.kill()
        assert await states.settle(before) == 0.0  # Redis cannot tell: ended, not kept
        key = new_key()
        assert await states.start(key, "c1", TIMEOUT_S) is True
        assert await states.start(key, "c2", TIMEOUT_S) is False
        assert await states.leave(key, "c1") is False
        assert await states.stop(key) is True
        assert await states.start(key, "c1", TIMEOUT_S) is True
        await asyncio.sleep(TIMEOUT_S + 0.05)
        assert await states.settle(key) == 0.0
