"""Typing states shared by every instance (the `TypingStates` of coordination/typing.py;
services/typing.py has the rules).

A state is a hash under `P:typing:<conversation>:<user>`: the deadline in Redis's clock
(milliseconds) and one field per connection that refreshed it. One Lua script decides each
step, so of two instances racing to end a state exactly one is told it did; every step goes
through one pipeline in call order, so the transitions reach the bus in the order Redis
made them. The key outlives its deadline by a grace period: long enough for a late timer to
settle it, short enough that a state whose instances all crashed disappears on its own.

An ended state leaves a tombstone (the hash with only `~ended`) for the grace period, so a
late timer can tell "ended, and announced by whoever ended it" from "lost" (Redis restarted
empty, or the key expired): a lost state is ended by the instance that finds it, so no
indicator stays on for want of its `is_typing:false`.

While Redis is down the states live in this process (the in-memory fallback), and a state
Redis cannot be asked about any more is ended rather than kept.
"""

from __future__ import annotations

from hubbub.adapters.memory.typing import MemoryTypingStates
from hubbub.adapters.redis.client import UNAVAILABLE, Breaker
from hubbub.adapters.redis.scripts import ScriptPipeline, lua
from hubbub.adapters.redis.topology import RedisClient
from hubbub.coordination.typing import Key

# How long a state outlives its deadline in Redis unless an instance settles it first, and
# how long a tombstone tells late timers that the end was announced.
GRACE_MS = 60_000
# `settle`'s answers besides the time left: ended (and announced) by someone, or lost.
SETTLE_ENDED = -1
SETTLE_LOST = -2

# One script decides every step (start, stop, leave, settle): scripts/typing.lua.
_TYPING = lua("typing")


class RedisTypingStates:
    """The `TypingStates` across instances."""

    def __init__(self, client: RedisClient, prefix: str) -> None:
        self._prefix = prefix + ":typing:"
        self._script = ScriptPipeline(client, _TYPING)
        self._fallback = MemoryTypingStates()
        self.breaker = Breaker("typing")

    async def start(self, key: Key, connection_id: str, timeout_s: float) -> bool:
        if key not in self._fallback:
            result = await self._run(key, "start", connection_id, max(1, int(timeout_s * 1000)))
            if result is not None:
                return result == 1
        return await self._fallback.start(key, connection_id, timeout_s)

    async def stop(self, key: Key) -> bool:
        here = await self._fallback.stop(key)
        return await self._run(key, "stop") == 1 or here

    async def leave(self, key: Key, connection_id: str) -> bool:
        here = await self._fallback.leave(key, connection_id)
        return await self._run(key, "leave", connection_id) == 1 or here

    async def settle(self, key: Key) -> float | None:
        if key in self._fallback:
            return await self._fallback.settle(key)
        result = await self._run(key, "settle")
        if result is None or result == SETTLE_LOST:
            return 0.0  # nobody will announce its end: this instance does
        return None if result == SETTLE_ENDED else result / 1000

    async def _run(self, key: Key, op: str, connection_id: str = "",
                   timeout_ms: int = 0) -> int | None:
        """The script's answer; None when Redis is unavailable."""
        conversation_id, user_id = key
        result = await self.breaker.attempt(lambda: self._script(
            [f"{self._prefix}{conversation_id}:{user_id}"],
            [op, connection_id, timeout_ms, GRACE_MS]))
        return None if result is UNAVAILABLE else int(result)
