"""The `Bus` seam (bus/base.py), the same tests for the memory and the Redis bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from hubbub.adapters.memory.bus import MemoryBus
from hubbub.adapters.redis.bus import RedisBus
from hubbub.bus.base import Bus, BusUnavailable
from tests.support.redis_server import RedisProcess
from tests.support.services import REDIS_URL, check_redis
from tests.support.waiting import until

pytestmark = pytest.mark.asyncio(loop_scope="session")

TIMEOUT = 10.0


class Inbox:
    """A bus handler that keeps what arrives and lets a test wait for it."""

    def __init__(self) -> None:
        self.events: list[tuple[str, bytes]] = []
        self._arrived = asyncio.Event()

    def __call__(self, topic: str, payload: bytes) -> None:
        self.events.append((topic, payload))
        self._arrived.set()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(TIMEOUT):
            while len(self.events) < count:
                self._arrived.clear()
                await self._arrived.wait()

    def payloads(self, topic: str) -> list[bytes]:
        return [payload for t, payload in self.events if t == topic]


@pytest_asyncio.fixture(params=["memory", "redis"], loop_scope="session")
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Bus, Inbox]]:
    """A started bus of each kind (the Redis one on a fresh key prefix)."""
    instance: Bus
    if request.param == "memory":
        instance = MemoryBus()
    else:
        instance = RedisBus(REDIS_URL, prefix=await check_redis())
    inbox = Inbox()
    await instance.start(inbox)
    try:
        yield instance, inbox
    finally:
        await instance.close()


async def test_a_subscribed_topic_is_delivered(bus: tuple[Bus, Inbox]) -> None:
    """An event published on a subscribed topic reaches the handler with its payload."""
    instance, inbox = bus
    instance.subscribe("conv.a")
    await instance.ready("conv.a")
    instance.publish("conv.a", b"hello")
    await inbox.wait_for(1)
    assert inbox.events == [("conv.a", b"hello")]


async def test_an_unsubscribed_topic_is_not_delivered(bus: tuple[Bus, Inbox]) -> None:
    """Events of topics nobody here wants never reach the handler."""
    instance, inbox = bus
    instance.subscribe("conv.a")
    await instance.ready("conv.a")
    instance.publish("conv.b", b"elsewhere")
    instance.publish("conv.a", b"marker")
    await inbox.wait_for(1)
    await asyncio.sleep(0.05)
    assert inbox.events == [("conv.a", b"marker")]


async def test_unsubscribing_stops_delivery(bus: tuple[Bus, Inbox]) -> None:
    """After unsubscribe, the topic's events stop arriving."""
    instance, inbox = bus
    instance.subscribe("conv.a")
    instance.subscribe("conv.b")
    await instance.ready("conv.a")
    await instance.ready("conv.b")
    instance.unsubscribe("conv.a")
    await asyncio.sleep(0.1)  # the UNSUBSCRIBE is on its way: it goes out on the next tick
    instance.publish("conv.a", b"gone")
    instance.publish("conv.b", b"marker")
    await inbox.wait_for(1)
    await asyncio.sleep(0.05)
    assert inbox.events == [("conv.b", b"marker")]


async def test_publish_keeps_call_order(bus: tuple[Bus, Inbox]) -> None:
    """Many events published in a burst arrive in the order publish was called."""
    instance, inbox = bus
    instance.subscribe("conv.a")
    instance.subscribe("conv.b")
    await instance.ready("conv.a")
    await instance.ready("conv.b")
    for n in range(2000):
        instance.publish("conv.a" if n % 2 else "conv.b", str(n).encode())
    await inbox.wait_for(2000)
    assert [int(payload) for _, payload in inbox.events] == list(range(2000))


async def test_a_healthy_bus_answers_ping(bus: tuple[Bus, Inbox]) -> None:
    """`ping` returns and `healthy` is True while the bus works."""
    instance, _ = bus
    await instance.ping()
    assert instance.healthy


# -- Redis only: several instances and outages ----------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def prefix() -> str:
    return await check_redis()


async def test_an_event_reaches_every_instance_once(prefix: str) -> None:
    """Each subscribed Redis bus, the publisher's own included, gets each event once."""
    buses = [RedisBus(REDIS_URL, prefix=prefix) for _ in range(3)]
    inboxes = [Inbox() for _ in buses]
    for instance, inbox in zip(buses, inboxes, strict=True):
        await instance.start(inbox)
        instance.subscribe("conv.shared")
        await instance.ready("conv.shared")
    try:
        buses[0].publish("conv.shared", b"one")
        buses[1].publish("conv.shared", b"two")
        for inbox in inboxes:
            await inbox.wait_for(2)
        await asyncio.sleep(0.05)
        for inbox in inboxes:
            assert sorted(inbox.payloads("conv.shared")) == [b"one", b"two"]
    finally:
        for instance in buses:
            await instance.close()


async def test_channels_carry_the_prefix(prefix: str) -> None:
    """Two deployments on one Redis with different prefixes do not hear each other."""
    ours, theirs = RedisBus(REDIS_URL, prefix=prefix), RedisBus(REDIS_URL, prefix=prefix + "x")
    inbox, other = Inbox(), Inbox()
    await ours.start(inbox)
    await theirs.start(other)
    try:
        for instance in (ours, theirs):
            instance.subscribe("control")
            await instance.ready("control")
        theirs.publish("control", b"not for us")
        ours.publish("control", b"ours")
        await inbox.wait_for(1)
        await other.wait_for(1)
        await asyncio.sleep(0.05)
        assert inbox.events == [("control", b"ours")]
        assert other.events == [("control", b"not for us")]
    finally:
        await ours.close()
        await theirs.close()


async def test_redis_outage_is_reported_and_survived(tmp_path: Path) -> None:
    """While Redis is down the bus is unhealthy and ping raises; after a restart it
    re-subscribes everything, tells the resume listeners, and delivers again."""
    redis = RedisProcess(tmp_path)
    await redis.start()
    instance = RedisBus(redis.url, prefix="outage")
    inbox = Inbox()
    resumed: list[bool] = []
    instance.on_resumed(lambda: resumed.append(True))
    await instance.start(inbox)
    try:
        instance.subscribe("conv.a")
        await instance.ready("conv.a")
        await redis.kill()
        await until(lambda: not instance.healthy, "the bus notices")
        with pytest.raises(BusUnavailable):
            await instance.ping()
        instance.publish("conv.a", b"lost")  # dropped, never queued for later
        await redis.start()
        await until(lambda: instance.healthy, "the bus is back")
        await instance.ping()
        assert resumed == [True]
        instance.publish("conv.a", b"after")
        await inbox.wait_for(1)
        assert inbox.events == [("conv.a", b"after")]
    finally:
        await instance.close()
        await redis.stop()


async def test_ready_returns_at_once_while_redis_is_down(tmp_path: Path) -> None:
    """A JoinConversation never waits on a dead Redis for its subscription."""
    redis = RedisProcess(tmp_path)
    await redis.start()
    instance = RedisBus(redis.url, prefix="down")
    await instance.start(Inbox())
    try:
        await redis.kill()
        await until(lambda: not instance.healthy, "the bus notices")
        instance.subscribe("conv.new")
        async with asyncio.timeout(0.5):
            await instance.ready("conv.new")
    finally:
        await instance.close()
        await redis.stop()
