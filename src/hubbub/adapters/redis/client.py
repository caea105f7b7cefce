"""The Redis plumbing every coordination adapter shares (PROTOCOL.md §4, §6).

- `connect`: a client that fails fast (no retries inside redis-py, short timeouts).
- `Breaker`: remembers that Redis failed, so an adapter degrades to its in-process
  fallback instead of waiting on a dead Redis for every call; `Breaker.attempt` is the
  one way an adapter calls Redis.
- `ScriptPipeline`: one Lua script for many callers, in call order, one round trip per batch.

The adapters: `ratelimit.py` (token buckets), `counts.py` (presence and connection caps),
`tickets.py` (WebSocket tickets), `typing.py` (typing states). Redis errors never reach the
services. The scripts address keys they build themselves, so they need a single Redis (not
Redis Cluster).
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from hubbub.logs import get_logger

log = get_logger("hubbub.coordination.redis")
REDIS_ERRORS = (RedisError, OSError)
# A dead Redis is skipped for this long after a failure, so a request pays at most one
# failed attempt per second instead of one per call.
BREAKER_COOLDOWN_S = 1.0
CONNECT_TIMEOUT_S = 1.0
COMMAND_TIMEOUT_S = 2.0
# Connections per instance: a round trip is ~0.1 ms, so 32 carry >100k checks a second.
POOL_SIZE = 32
# Script calls per pipeline: bounds one round trip's size.
MAX_PIPELINE = 1000

T = TypeVar("T")


def connect(url: str) -> Redis:
    """A client that fails fast: no retries inside redis-py (the adapters fall back instead)
    and short timeouts, since every call sits on a request's path. Concurrent calls beyond
    the pool wait for a connection instead of failing (a burst of pipelined requests)."""
    pool = BlockingConnectionPool.from_url(
        url, max_connections=POOL_SIZE, timeout=COMMAND_TIMEOUT_S, protocol=2,
        retry=Retry(NoBackoff(), 0), socket_timeout=COMMAND_TIMEOUT_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S, socket_keepalive=True,
    )
    return Redis.from_pool(pool)


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


class ScriptPipeline:
    """Runs one Lua script for many callers: the calls queued while a round trip is in
    flight go out together in the next pipeline, on one connection, in call order.

    Call order matters: a connection's requests are checked in the order they arrived, so
    of four pipelined requests against three tokens, the fourth is the one refused. Calls
    spread over pooled connections would reach Redis in any order.
    """

    def __init__(self, client: Redis, source: str) -> None:
        self._client = client
        self._script = client.register_script(source)
        self._source = source
        self._queue: list[tuple[list[Any], asyncio.Future[Any]]] = []
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, keys: list[str], args: list[Any]) -> Any:
        """The script's result.

        Raises:
            RedisError, OSError: Redis failed (the call may or may not have run).
        """
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(([self._script.sha, len(keys), *keys, *args], future))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_PIPELINE], self._queue[MAX_PIPELINE:]
                await self._run(batch)
        finally:
            self._task = None

    async def _run(self, batch: list[tuple[list[Any], asyncio.Future[Any]]]) -> None:
        try:
            results = await self._execute([call for call, _ in batch])
            missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
            if missing:  # Redis restarted and forgot the script; those calls did not run
                await self._client.script_load(self._source)
                again = await self._execute([batch[i][0] for i in missing])
                for i, result in zip(missing, again, strict=True):
                    results[i] = result
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
                    future.exception()  # retrieved here; each caller re-raises its own copy
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _execute(self, calls: list[list[Any]]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        try:
            for call in calls:
                pipe.execute_command("EVALSHA", *call)
            return list(await pipe.execute(raise_on_error=False))
        finally:
            await pipe.reset()  # type: ignore[no-untyped-call]


