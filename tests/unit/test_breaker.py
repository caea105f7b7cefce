"""The one breaker every Redis adapter calls through (adapters/redis/client.py): Redis is
skipped while known down, tried again after the cooldown, and each outage's end is told."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from hubbub.adapters.redis.client import UNAVAILABLE, Breaker

pytestmark = pytest.mark.asyncio(loop_scope="session")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Call:
    """Stands for a Redis call: answers, or fails the way a lost connection does."""

    def __init__(self) -> None:
        self.up = True
        self.calls = 0

    async def call(self) -> str:
        self.calls += 1
        if not self.up:
            raise RedisConnectionError("connection refused")
        return "answer"


class Noted:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


async def test_a_failure_skips_redis_until_the_cooldown_has_passed() -> None:
    """After one failure the next calls fall back at once; after the cooldown Redis is
    tried again, and its answer ends the outage."""
    clock, redis = FakeClock(), Call()
    breaker = Breaker("part", cooldown=1.0, clock=clock)
    assert await breaker.attempt(redis.call) == "answer"
    redis.up = False
    assert await breaker.attempt(redis.call) is UNAVAILABLE
    assert breaker.down
    assert await breaker.attempt(redis.call) is UNAVAILABLE
    assert redis.calls == 2  # the third was skipped
    redis.up = True
    clock.now += 1.0
    assert await breaker.attempt(redis.call) == "answer"
    assert not breaker.down


async def test_each_failure_is_told_and_the_end_of_an_outage_once() -> None:
    """`on_failed` runs after every failure, `on_recovered` once, when Redis answers again."""
    clock, redis = FakeClock(), Call()
    failed, recovered = Noted(), Noted()
    breaker = Breaker("part", cooldown=1.0, clock=clock, on_failed=failed,
                      on_recovered=recovered)
    redis.up = False
    for _ in range(2):
        await breaker.attempt(redis.call)
        clock.now += 1.0
    assert (failed.count, recovered.count) == (2, 0)
    redis.up = True
    await breaker.attempt(redis.call)
    await breaker.attempt(redis.call)
    assert (failed.count, recovered.count) == (2, 1)


async def test_a_probe_runs_while_redis_is_known_down_and_recovers_quietly() -> None:
    """The heartbeat's probe is not skipped by the cooldown; when it finds Redis back, the
    breaker closes without `on_recovered` (the prober handles the recovery itself)."""
    clock, redis = FakeClock(), Call()
    recovered = Noted()
    breaker = Breaker("part", cooldown=1.0, clock=clock, on_recovered=recovered)
    redis.up = False
    assert await breaker.probe(redis.call) is UNAVAILABLE
    assert await breaker.probe(redis.call) is UNAVAILABLE
    assert redis.calls == 2
    redis.up = True
    assert await breaker.probe(redis.call) == "answer"
    assert not breaker.down
    assert recovered.count == 0


async def test_an_error_that_is_not_redis_s_reaches_the_caller() -> None:
    """Only Redis errors are fallen back from: a bug in the call is raised, and Redis is not
    marked down for it."""
    breaker = Breaker("part", clock=FakeClock())

    async def broken() -> str:
        raise ValueError("not a Redis error")

    with pytest.raises(ValueError, match="not a Redis error"):
        await breaker.attempt(broken)
    assert not breaker.down
