"""Shared counting (adapters/redis/) against its in-memory counterparts: rate limits,
presence counts, connection caps and tickets, on the machine's Redis."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from hubbub.adapters.memory.presence import MemoryPresenceCounter
from hubbub.adapters.memory.ratelimit import MemoryRateLimiter
from hubbub.adapters.redis.client import connect
from hubbub.adapters.redis.counts import (
    InstanceRegistry,
    RedisConnectionLimiter,
    RedisPresenceCounter,
)
from hubbub.adapters.redis.ratelimit import RedisRateLimiter
from hubbub.adapters.redis.tickets import RedisTicketStore
from hubbub.adapters.redis.topology import RedisClient
from hubbub.coordination.presence import PresenceCounter
from hubbub.coordination.ratelimit import RateLimiter
from hubbub.domain.errors import RateLimited
from hubbub.domain.ratelimit import BucketRule
from hubbub.domain.tokens import Identity
from tests.support.redis_server import private_redis
from tests.support.services import REDIS_URL, check_redis
from tests.support.waiting import until

pytestmark = pytest.mark.asyncio(loop_scope="session")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest_asyncio.fixture(loop_scope="session")
async def client() -> AsyncIterator[RedisClient]:
    await check_redis()
    redis = connect(REDIS_URL)
    try:
        yield redis
    finally:
        await redis.aclose()


@pytest_asyncio.fixture(loop_scope="session")
async def prefix() -> str:
    return await check_redis()


async def decisions(limiter: RateLimiter, clock: FakeClock, rule: BucketRule,
                    steps: list[float]) -> list[int]:
    """Hit one bucket after each time step; 0 for allowed, else the retry_after_ms."""
    out: list[int] = []
    for step in steps:
        clock.now += step
        try:
            await limiter.hit("user", rule)
            out.append(0)
        except RateLimited as exc:
            out.append(exc.retry_after_ms)
    return out


# -- rate limits --------------------------------------------------------------------------


async def test_redis_buckets_decide_exactly_like_the_domain_math(client: Redis,
                                                                 prefix: str) -> None:
    """The Lua script and domain/ratelimit.py agree on every decision and retry time."""
    rule = BucketRule(rate=3.7, burst=5)
    steps = [random.Random(7).choice([0.0, 0.01, 0.05, 0.13, 0.3, 1.1]) for _ in range(300)]
    memory_clock, redis_clock = FakeClock(), FakeClock()
    expected = await decisions(MemoryRateLimiter(memory_clock), memory_clock, rule, steps)
    actual = await decisions(RedisRateLimiter(client, prefix, clock=redis_clock), redis_clock,
                             rule, steps)
    assert actual == expected
    assert 0 < expected.count(0) < len(expected)


async def test_instances_share_one_bucket(client: Redis, prefix: str) -> None:
    """A burst of N spent through three limiters (three instances) is N in total."""
    rule = BucketRule(rate=0.001, burst=6)
    limiters = [RedisRateLimiter(client, prefix) for _ in range(3)]
    allowed = 0
    for n in range(30):
        with contextlib.suppress(RateLimited):
            await limiters[n % 3].hit("shared", rule)
            allowed += 1
    assert allowed == 6


async def test_pipelined_checks_are_decided_in_call_order(client: Redis, prefix: str) -> None:
    """Of many concurrent checks against three tokens, the first three calls win."""
    limiter = RedisRateLimiter(client, prefix)
    rule = BucketRule(rate=0.001, burst=3)

    async def one() -> bool:
        try:
            await limiter.hit("ordered", rule)
        except RateLimited:
            return False
        return True

    results = await asyncio.gather(*(one() for _ in range(50)))
    assert results == [True] * 3 + [False] * 47


async def test_limits_fall_back_to_this_process_while_redis_is_down(tmp_path: Path) -> None:
    """With Redis gone, a limiter still limits (per process) instead of failing requests."""
    async with private_redis(tmp_path) as (redis, private):
        limiter = RedisRateLimiter(private, "down")
        await redis.kill()
        rule = BucketRule(rate=0.001, burst=2)
        outcomes: list[bool] = []
        for _ in range(4):
            try:
                await limiter.hit("u", rule)
                outcomes.append(True)
            except RateLimited:
                outcomes.append(False)
        assert outcomes == [True, True, False, False]


# -- presence counts ------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def registries(client: RedisClient, prefix: str, count: int, ttl: float = 30.0
                     ) -> AsyncIterator[list[InstanceRegistry]]:
    made = [InstanceRegistry(client, prefix, ttl) for _ in range(count)]
    try:
        yield made
    finally:
        for registry in made:
            await registry.close()


@pytest_asyncio.fixture(params=["memory", "redis"], loop_scope="session")
async def counter(request: pytest.FixtureRequest, client: Redis,
                  prefix: str) -> AsyncIterator[PresenceCounter]:
    """A presence counter of each kind."""
    if request.param == "memory":
        yield MemoryPresenceCounter()
        return
    async with registries(client, prefix, 1) as (registry,):
        counter = RedisPresenceCounter(registry)
        await registry.start()
        yield counter


async def test_first_and_last_connection_are_reported(counter: PresenceCounter) -> None:
    """Only a user's first connection is 'first' and only the last one 'last'."""
    assert await counter.connected("u1") is True
    assert await counter.connected("u1") is False
    assert await counter.disconnected("u1") is False
    assert await counter.disconnected("u1") is True


async def test_online_lists_connected_users(counter: PresenceCounter) -> None:
    """`online` names exactly the users with a connection."""
    await counter.connected("a")
    await counter.connected("b")
    await counter.disconnected("b")
    assert await counter.online(["a", "b", "c"]) == {"a"}


async def test_concurrent_connections_of_one_user_have_one_first(
        counter: PresenceCounter) -> None:
    """Connections of one user opening at the same moment announce online once, and
    closing together announce offline once."""
    firsts = await asyncio.gather(*(counter.connected("same") for _ in range(10)))
    assert sum(firsts) == 1
    lasts = await asyncio.gather(*(counter.disconnected("same") for _ in range(10)))
    assert sum(lasts) == 1
    assert await counter.online(["same"]) == set()


async def test_presence_is_counted_across_instances(client: Redis, prefix: str) -> None:
    """A user connected on two instances goes offline only when the second one closes."""
    async with registries(client, prefix, 2) as (one, two):
        first, second = RedisPresenceCounter(one), RedisPresenceCounter(two)
        await one.start()
        await two.start()
        assert await first.connected("u") is True
        assert await second.connected("u") is False
        assert await second.online(["u"]) == {"u"}
        assert await first.disconnected("u") is False
        assert await second.disconnected("u") is True
        assert await first.online(["u"]) == set()


class Noted(list[str]):
    """A presence listener that notes the user ids it is called with, in order."""

    async def __call__(self, user_id: str) -> None:
        self.append(user_id)


async def test_a_crashed_instance_s_users_go_offline(client: Redis, prefix: str) -> None:
    """When an instance stops beating, the survivors stop counting its connections and
    report its users offline once."""
    async with registries(client, prefix, 2, ttl=1.0) as (alive, crashed):
        survivor, doomed = RedisPresenceCounter(alive), RedisPresenceCounter(crashed)
        expired = Noted()
        survivor.on_expired(expired)
        await alive.start()
        await crashed.beat()  # one beat, then silence: as if the process died
        await doomed.connected("lost")
        await doomed.connected("kept")
        await survivor.connected("kept")
        assert await survivor.online(["lost", "kept"]) == {"lost", "kept"}
        await until(lambda: "lost" in expired, "the crashed instance is reaped")
        assert expired == ["lost"]
        assert await survivor.online(["lost", "kept"]) == {"kept"}


async def test_a_stalled_instance_s_users_are_announced_back_online(client: Redis,
                                                                   prefix: str) -> None:
    """An instance cut off past its TTL is reaped (its users reported offline); when it
    beats again it counts them again and reports, once, those it had announced offline."""
    async with registries(client, prefix, 2, ttl=1.0) as (alive, stalled):
        survivor, sleeper = RedisPresenceCounter(alive), RedisPresenceCounter(stalled)
        expired, revived = Noted(), Noted()
        survivor.on_expired(expired)
        sleeper.on_revived(revived)
        await alive.start()
        await stalled.beat()  # one beat, then silence: a stall (or a cut to Redis)
        await sleeper.connected("napper")
        await sleeper.connected("shared")
        await survivor.connected("shared")
        await until(lambda: "napper" in expired, "the stalled instance is reaped")
        assert await survivor.online(["napper", "shared"]) == {"shared"}
        await stalled.beat()  # awake: its heartbeat key is gone, so it writes its counts
        assert revived == ["napper"]  # "shared" was never reported offline
        assert await survivor.online(["napper", "shared"]) == {"napper", "shared"}
        await stalled.beat()
        assert revived == ["napper"]


async def test_counts_come_back_after_redis_loses_them(tmp_path: Path) -> None:
    """After a Redis restart (empty), each instance writes its own counts back."""
    async with (private_redis(tmp_path) as (redis, private),
                registries(private, "restart", 2, ttl=1.5) as (one, two)):
        first, second = RedisPresenceCounter(one), RedisPresenceCounter(two)
        revived = Noted()
        first.on_revived(revived)
        await one.start()
        await two.start()
        await first.connected("u")
        await redis.kill()
        await redis.start()

        async def counted() -> bool:
            return await second.online(["u"]) == {"u"}

        await until(counted, "the counts are written back")
        assert await second.connected("u") is False
        assert revived == []  # nobody was reported offline: nothing to announce


# -- connection caps ------------------------------------------------------------------------


async def test_the_connection_cap_holds_across_instances(client: Redis, prefix: str) -> None:
    """With a cap of two, the third connection is refused whichever instance it reaches."""
    async with registries(client, prefix, 3) as regs:
        limiters = [RedisConnectionLimiter(r) for r in regs]
        for registry in regs:
            await registry.start()
        assert await limiters[0].acquire("u", 2) is True
        assert await limiters[1].acquire("u", 2) is True
        assert await limiters[2].acquire("u", 2) is False
        await limiters[0].release("u")
        assert await limiters[2].acquire("u", 2) is True


async def test_racing_handshakes_cannot_both_take_the_last_slot(client: Redis,
                                                                prefix: str) -> None:
    """Many concurrent acquires on several instances admit exactly `limit`."""
    async with registries(client, prefix, 3) as regs:
        limiters = [RedisConnectionLimiter(r) for r in regs]
        for registry in regs:
            await registry.start()
        results = await asyncio.gather(*(limiters[n % 3].acquire("u", 5) for n in range(40)))
        assert sum(results) == 5


# -- tickets --------------------------------------------------------------------------------


async def test_a_ticket_is_redeemed_once_on_any_instance(client: Redis, prefix: str) -> None:
    """A ticket put by one instance is taken by another, and only once."""
    issuer, redeemer = RedisTicketStore(client, prefix), RedisTicketStore(client, prefix)
    identity = Identity("6f1c2a9e-3b7d-4c55-9a1e-0d2f4b6c8a10", "alice", 2_000_000_000.0)
    await issuer.put("t1", identity, 30.0)
    assert await redeemer.take("t1") == identity
    assert await issuer.take("t1") is None


async def test_a_ticket_expires(client: Redis, prefix: str) -> None:
    """A ticket not redeemed within its TTL is gone."""
    store = RedisTicketStore(client, prefix)
    await store.put("t2", Identity("u", None, 2_000_000_000.0), 0.05)
    await asyncio.sleep(0.2)
    assert await store.take("t2") is None


async def test_tickets_issued_while_redis_is_down_are_redeemed_here_once(
        tmp_path: Path) -> None:
    """With Redis gone a ticket is kept in this process; after Redis is back it is still
    redeemed here (this process's tickets are asked first), and only once."""
    async with private_redis(tmp_path) as (redis, private):
        store = RedisTicketStore(private, "down")
        identity = Identity("6f1c2a9e-3b7d-4c55-9a1e-0d2f4b6c8a10", "alice", 2_000_000_000.0)
        await redis.kill()
        await store.put("t3", identity, 30.0)
        await redis.start()
        await until(lambda: store.breaker.available, "the breaker lets Redis be tried")
        assert await store.take("t3") == identity
        assert await store.take("t3") is None
        assert not store.breaker.down  # Redis was asked the second time, and answered
