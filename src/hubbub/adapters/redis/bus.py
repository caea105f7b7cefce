"""The Redis bus: pub/sub between hubbub instances (docs/ARCHITECTURE.md, send path steps 4–5).

A topic (bus/topics.py) travels on the channel `<prefix>:<topic>`, so deployments can
share one Redis. Each instance keeps two connections:

- Publishing: `publish` appends to a queue and returns. One task drains the queue, sending
  everything queued in one pipeline per round trip; one task and one pipeline at a time
  keep the call order, which is the commit order (bus/base.py).
- Subscribing: one connection in subscribed mode (subscriber.py), or on a Redis Cluster one
  per primary with sharded pub/sub (SSUBSCRIBE/SPUBLISH: a channel lives on the primary of
  its slot; topology.py). The channels wanted are the hub's topics; a keeper task per
  connection sends the difference between wanted and sent whenever it changes, and a PING
  every few seconds proves the connection alive.

When Redis goes away, `healthy` turns False and `ping` raises BusUnavailable (so /readyz
says degraded); events published meanwhile are dropped — and never sent twice: a failed pipeline
is not retried, since part of it may have gone out. Both sides reconnect with capped,
jittered exponential backoff; the subscriber re-subscribes every wanted channel, and once
that is done the resume listeners hear about it. Clients recover what they missed from the
version gap and `SyncMessages` (PROTOCOL.md §2).

redis-py's exceptions stay inside this module: the seam raises only BusUnavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import Callable
from typing import Any

from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from hubbub.adapters.redis.subscriber import ShardSubscriber
from hubbub.adapters.redis.topology import ConnectionFactory, open_client, subscriber_shards
from hubbub.bus.base import BusHandler, BusUnavailable, ResumeListener
from hubbub.bus.topics import parse_topic
from hubbub.logs import get_logger

log = get_logger("hubbub.bus.redis")

# Events per pipeline: one round trip stays a few hundred KiB at most.
MAX_PIPELINE = 1000
# Events waiting for the round trip in flight. Past this Redis is not keeping up, and
# dropping (at-most-once, repaired by sync) beats growing without bound.
MAX_QUEUE = 100_000
# Reconnect delays: the first retry is quick (a blip), later ones at most BACKOFF_MAX_S
# apart, so a restarted Redis is found within about two seconds.
BACKOFF_MIN_S = 0.05
BACKOFF_MAX_S = 2.0
CONNECT_TIMEOUT_S = 2.0
COMMAND_TIMEOUT_S = 5.0
PING_TIMEOUT_S = 2.0
# JoinConversation waits at most this long for its SUBSCRIBE to be confirmed.
READY_TIMEOUT_S = 2.0
# `start` waits this long for the first connection; past it the server starts degraded.
START_TIMEOUT_S = 3.0

# What a lost or refused connection raises (TimeoutError is an OSError).
_ERRORS = (RedisError, OSError)


class Backoff:
    """Capped exponential delays with jitter, so instances do not reconnect in step."""

    def __init__(self, first: float = BACKOFF_MIN_S, cap: float = BACKOFF_MAX_S) -> None:
        self._first = first
        self._cap = cap
        self._attempt = 0

    def reset(self) -> None:
        self._attempt = 0

    def next(self) -> float:
        delay: float = min(self._cap, self._first * 2.0 ** min(self._attempt, 30))
        self._attempt += 1
        return delay * random.uniform(0.5, 1.0)


class RedisBus:
    """The `Bus` on Redis pub/sub: many instances behaving as one."""

    def __init__(self, url: str, *, prefix: str = "hubbub") -> None:
        self._prefix = prefix + ":"
        # No retries inside redis-py: a retried pipeline could publish twice, and a command
        # retried with backoff would stall the caller; this module reconnects by itself.
        options: dict[str, Any] = {  # each connection copies the Retry
            "protocol": 2, "retry": Retry(NoBackoff(), 0), "socket_timeout": COMMAND_TIMEOUT_S,
            "socket_connect_timeout": CONNECT_TIMEOUT_S, "socket_keepalive": True}
        self._client = open_client(url, **options)
        self._shards = subscriber_shards(url, self._client, **options)
        self._subscribers: dict[str, ShardSubscriber] = {}
        self._ready_shards: set[str] = set()
        self._handler: BusHandler | None = None
        self._queue: deque[tuple[str, bytes]] = deque()
        self._queued = asyncio.Event()
        # Channel name → topic for every channel the hub wants.
        self.wanted: dict[bytes, str] = {}
        self._confirmed: set[bytes] = set()
        self._waiters: dict[bytes, list[asyncio.Future[None]]] = {}
        self._publisher_up = False
        self._subscriber_up = False
        self._healthy = False
        self._ever_healthy = False
        self._up = asyncio.Event()
        self._resume_listeners: list[ResumeListener] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._quiet = False
        # Sharded pub/sub on a cluster: a channel lives on the primary of its slot.
        self._publish_command = "SPUBLISH" if self._shards.sharded else "PUBLISH"
        self.dropped = 0

    # -- the seam ------------------------------------------------------------------------

    async def start(self, handler: BusHandler) -> None:
        self._handler = handler
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._publish_loop()),
                       loop.create_task(self._subscribe_loop())]
        try:
            await asyncio.wait_for(self._up.wait(), START_TIMEOUT_S)
        except TimeoutError:
            log.warning("bus.unavailable_at_start", note="serving without the bus until "
                        "Redis answers; /readyz says degraded meanwhile")

    async def close(self) -> None:
        """Send what is queued (briefly), then stop both connections."""
        if self._publisher_up and self._queue:
            deadline = asyncio.get_running_loop().time() + 1.0
            while self._queue and self._publisher_up:
                if asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.01)
        self._closing = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._handler = None
        self._wake_waiters()
        await self._client.aclose()
        await self._shards.close()

    def publish(self, topic: str, payload: bytes) -> None:
        if not self._publisher_up or len(self._queue) >= MAX_QUEUE:
            self.dropped += 1
            return
        self._queue.append((self._prefix + topic, payload))
        self._queued.set()

    def subscribe(self, topic: str) -> None:
        channel = (self._prefix + topic).encode()
        if channel not in self.wanted:
            self.wanted[channel] = topic
            self._mark_dirty()

    def unsubscribe(self, topic: str) -> None:
        channel = (self._prefix + topic).encode()
        if self.wanted.pop(channel, None) is not None:
            self._mark_dirty()

    async def ready(self, topic: str) -> None:
        channel = (self._prefix + topic).encode()
        if channel not in self.wanted or channel in self._confirmed or not self._healthy:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(channel, [])
        waiters.append(future)
        try:
            await asyncio.wait_for(future, READY_TIMEOUT_S)
        except TimeoutError:
            log.warning("bus.subscribe_slow", waited_s=READY_TIMEOUT_S)
        finally:
            with contextlib.suppress(ValueError):
                waiters.remove(future)
            if not waiters and self._waiters.get(channel) is waiters:
                del self._waiters[channel]

    def on_resumed(self, listener: ResumeListener) -> None:
        self._resume_listeners.append(listener)

    async def ping(self) -> None:
        if not self._healthy:
            raise BusUnavailable("the Redis bus is reconnecting")
        try:
            await asyncio.wait_for(self._client.ping(), PING_TIMEOUT_S)
        except _ERRORS as exc:
            self._set_publisher(False)
            raise BusUnavailable(f"Redis did not answer: {type(exc).__name__}") from exc

    @property
    def healthy(self) -> bool:
        return self._healthy

    # -- publishing ----------------------------------------------------------------------

    async def _publish_loop(self) -> None:
        backoff = Backoff()
        while True:
            if not self._publisher_up:
                try:
                    await self._client.ping()
                except Exception as exc:
                    # Anything else from redis-py (a failover can surprise it) must not end
                    # this task: a bus that never publishes again would look merely down.
                    if not isinstance(exc, _ERRORS):
                        log.exception("bus.publisher_failed")
                    await asyncio.sleep(backoff.next())
                    continue
                backoff.reset()
                self._set_publisher(True)
            if not self._queue:
                self._queued.clear()
                await self._queued.wait()
                continue
            await self._send_batch()

    async def _send_batch(self) -> None:
        queue = self._queue
        batch = [queue.popleft() for _ in range(min(len(queue), MAX_PIPELINE))]
        pipe = self._client.pipeline(transaction=False)
        for channel, payload in batch:
            pipe.execute_command(self._publish_command, channel, payload)
        try:
            await pipe.execute()
        except Exception as exc:  # any failure: drop, reconnect; never end the publish task
            if not isinstance(exc, _ERRORS):
                log.exception("bus.publisher_failed")
            lost = len(batch) + len(queue)
            queue.clear()
            self.dropped += lost
            log.warning("bus.publish_failed", error=type(exc).__name__, dropped=lost)
            self._set_publisher(False)
        finally:
            with contextlib.suppress(*_ERRORS):
                await pipe.reset()  # type: ignore[no-untyped-call]

    # -- subscribing ---------------------------------------------------------------------

    async def _subscribe_loop(self) -> None:
        """Plan the subscriber connections (one, or one per cluster primary) and serve them
        until one fails; then all start afresh, so a moved slot is found on its new primary."""
        backoff = Backoff()
        while True:
            try:
                shards = await self._shards.plan()
                self._subscribers = {
                    shard: ShardSubscriber(shard, self, self._mine(shard),
                                           sharded=self._shards.sharded,
                                           watch=self._shards.watch)
                    for shard in shards}
                await self._serve_all(shards, backoff)
            except _ERRORS as exc:
                if not self._quiet:  # one warning per outage, not one per attempt
                    self._quiet = True
                    log.warning("bus.subscriber_down", error=type(exc).__name__)
            except Exception:
                log.exception("bus.subscriber_failed")
            finally:
                self._subscribers = {}
                self._set_subscriber(False)
            await asyncio.sleep(backoff.next())

    def _mine(self, shard: str) -> Callable[[bytes], bool]:
        return lambda channel: self._shards.shard_of(channel) == shard

    async def _serve_all(self, shards: dict[str, ConnectionFactory], backoff: Backoff) -> None:
        """Connect every shard, then serve them until the first fails (raises)."""
        self._confirmed.clear()
        self._ready_shards.clear()
        connections: list[AbstractConnection] = []
        try:
            for factory in shards.values():
                connection = factory()
                connections.append(connection)
                await connection.connect()  # type: ignore[no-untyped-call]
            backoff.reset()
            self._quiet = False
            served = [asyncio.ensure_future(subscriber.serve(connection)) for subscriber,
                      connection in zip(self._subscribers.values(), connections, strict=True)]
            try:
                done, _ = await asyncio.wait(served, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in served:
                    task.cancel()
                await asyncio.gather(*served, return_exceptions=True)
            for task in done:
                task.result()  # raises why it ended
        finally:
            for connection in connections:
                with contextlib.suppress(*_ERRORS):
                    await connection.disconnect(nowait=True)

    # What the subscriber connections report (subscriber.py's SubscriberOwner).

    def on_message(self, channel: bytes, payload: bytes) -> None:
        handler = self._handler
        if handler is None:
            return
        topic = self.wanted.get(channel)
        if topic is None:  # unsubscribed a moment ago: nobody here wants it any more
            return
        try:
            handler(topic, payload)
        except Exception:
            log.exception("bus.handler_failed", topic_kind=parse_topic(topic)[0])

    def on_subscribed(self, channel: bytes) -> None:
        self._confirmed.add(channel)
        for future in self._waiters.pop(channel, ()):
            if not future.done():
                future.set_result(None)

    def on_unsubscribed(self, channel: bytes) -> None:
        self._confirmed.discard(channel)

    def on_ready(self, shard: str) -> None:
        self._ready_shards.add(shard)
        if self._ready_shards >= self._subscribers.keys():
            self._set_subscriber(True)

    def _mark_dirty(self) -> None:
        for subscriber in self._subscribers.values():
            subscriber.dirty.set()

    # -- health --------------------------------------------------------------------------

    def _set_publisher(self, up: bool) -> None:
        self._publisher_up = up
        if not up:
            self._queued.set()  # wake the publish loop so that it reconnects
        self._update_health()

    def _set_subscriber(self, up: bool) -> None:
        self._subscriber_up = up
        if not up:
            self._confirmed.clear()
            # The publisher's pooled connection most likely died too (Redis restarted):
            # have it proven with a PING before the next batch rather than lose that batch.
            if self._publisher_up:
                self._set_publisher(False)
        self._update_health()

    def _update_health(self) -> None:
        healthy = self._publisher_up and self._subscriber_up
        if healthy == self._healthy or self._closing:
            return
        self._healthy = healthy
        if not healthy:
            log.warning("bus.down", publisher=self._publisher_up,
                        subscriber=self._subscriber_up)
            self._up.clear()
            self._wake_waiters()
            return
        self._up.set()
        if not self._ever_healthy:
            self._ever_healthy = True
            log.info("bus.connected", channels=len(self.wanted))
            return
        log.info("bus.resumed", channels=len(self.wanted), dropped_so_far=self.dropped)
        for listener in self._resume_listeners:
            try:
                listener()
            except Exception:
                log.exception("bus.resume_listener_failed")

    def _wake_waiters(self) -> None:
        """Nobody waits for a subscription while the bus is down (ready() returns at once)."""
        waiters, self._waiters = self._waiters, {}
        for futures in waiters.values():
            for future in futures:
                if not future.done():
                    future.set_result(None)
