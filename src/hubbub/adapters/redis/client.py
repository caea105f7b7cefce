"""The Redis plumbing every coordination adapter shares (PROTOCOL.md §4, §6).

- `connect`: a client that fails fast (no retries inside redis-py, short timeouts).
- `Breaker`: remembers that Redis failed, so an adapter degrades to its in-process
  fallback instead of waiting on a dead Redis for every call; `Breaker.attempt` is the
  one way an adapter calls Redis.

The adapters: `ratelimit.py` (token buckets), `counts.py` (presence and connection caps),
`tickets.py` (WebSocket tickets), `typing.py` (typing states); their Lua scripts and the
pipeline that runs them: `scripts.py`. Redis errors never reach the services.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from hubbub.adapters.redis.topology import REDIS_ERRORS, RedisClient, open_client
from hubbub.logs import get_logger

log = get_logger("hubbub.coordination.redis")
# A dead Redis is skipped for this long after a failure, so a request pays at most one
# failed attempt per second instead of one per call.
BREAKER_COOLDOWN_S = 1.0
CONNECT_TIMEOUT_S = 1.0
COMMAND_TIMEOUT_S = 2.0
# Connections per instance: a round trip is ~0.1 ms, so 32 carry >100k checks a second.
POOL_SIZE = 32

T = TypeVar("T")


def connect(url: str) -> RedisClient:
    """A client that fails fast: no retries inside redis-py (the adapters fall back instead)
    and short timeouts, since every call sits on a request's path. Concurrent calls beyond
    the pool wait for a connection instead of failing (a burst of pipelined requests).
    One server, Sentinel or Cluster, as `url` says (topology.py)."""
    return open_client(url, max_connections=POOL_SIZE, wait_s=COMMAND_TIMEOUT_S, protocol=2,
                       retry=Retry(NoBackoff(), 0), socket_timeout=COMMAND_TIMEOUT_S,
                       socket_connect_timeout=CONNECT_TIMEOUT_S, socket_keepalive=True)


class Unavailable(enum.Enum):
    """What `Breaker.attempt` returns instead of a result: Redis was skipped (it failed
    less than the cooldown ago) or failed now. The caller falls back to this process."""

    REDIS = "redis"


UNAVAILABLE = Unavailable.REDIS


class Breaker:
    """Remembers that Redis failed, and tells when to try it again.

    Every adapter reaches Redis through `attempt` (the heartbeat through `probe`), so the
    rule is written once: skip Redis while it is known down, note each failure (the first
    of an outage is logged) and each success, and let the caller fall back. `on_failed`
    runs after every failure, `on_recovered` when an attempt ends an outage.
    """

    def __init__(self, name: str, cooldown: float = BREAKER_COOLDOWN_S,
                 clock: Callable[[], float] = time.monotonic, *,
                 on_failed: Callable[[], None] | None = None,
                 on_recovered: Callable[[], None] | None = None) -> None:
        self.name = name
        self._cooldown = cooldown
        self._clock = clock
        self._retry_at = 0.0
        self._on_failed = on_failed
        self._on_recovered = on_recovered
        self.down = False

    @property
    def available(self) -> bool:
        return not self.down or self._clock() >= self._retry_at

    async def attempt(self, call: Callable[[], Awaitable[T]]) -> T | Unavailable:
        """`call()`'s result, or UNAVAILABLE when Redis is skipped or fails (a Redis error
        or OSError, which `call` raises; any other exception propagates)."""
        if not self.available:
            return UNAVAILABLE
        return await self._run(call, probe=False)

    async def probe(self, call: Callable[[], Awaitable[T]]) -> T | Unavailable:
        """Like `attempt`, but tried even while Redis is known down: for the periodic check
        that finds Redis back, which handles the recovery itself (no `on_recovered`)."""
        return await self._run(call, probe=True)

    async def _run(self, call: Callable[[], Awaitable[T]], *, probe: bool) -> T | Unavailable:
        try:
            result = await call()
        except REDIS_ERRORS as exc:
            self.failed(exc)
            return UNAVAILABLE
        if self.succeeded() and not probe and self._on_recovered is not None:
            self._on_recovered()
        return result

    def failed(self, exc: BaseException) -> None:
        if not self.down:
            log.warning("redis.degraded", part=self.name, error=type(exc).__name__,
                        note="counting in this process until Redis answers")
        self.down = True
        self._retry_at = self._clock() + self._cooldown
        if self._on_failed is not None:
            self._on_failed()

    def succeeded(self) -> bool:
        """Note a success; True when it ends an outage."""
        if not self.down:
            return False
        self.down = False
        log.info("redis.recovered", part=self.name)
        return True
