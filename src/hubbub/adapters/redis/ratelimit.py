"""Token buckets shared by every instance (PROTOCOL.md §6): one Lua script per check,
atomic, with the arithmetic of domain/ratelimit.py and Redis's clock (one clock for every
instance)."""

from __future__ import annotations

from collections.abc import Callable

from hubbub.adapters.memory.ratelimit import MemoryRateLimiter
from hubbub.adapters.redis.client import UNAVAILABLE, Breaker
from hubbub.adapters.redis.scripts import ScriptPipeline, lua
from hubbub.adapters.redis.topology import RedisClient
from hubbub.coordination.ratelimit import RateLimiter
from hubbub.domain.errors import RateLimited
from hubbub.domain.ratelimit import BucketRule

# domain/ratelimit.py `take`, step for step (scripts/token_bucket.lua).
_TOKEN_BUCKET = lua("token_bucket")


class RedisRateLimiter:
    """Token buckets shared by every instance; the same math as domain/ratelimit.py.

    Buckets expire once they would be full again, so Redis holds only recent users.
    """

    def __init__(self, client: RedisClient, prefix: str,
                 clock: Callable[[], float] | None = None,
                 fallback: RateLimiter | None = None) -> None:
        """`clock`: seconds, for tests; None uses Redis's own clock (one for all instances).
        `fallback`: used while Redis is down (per-process buckets by default)."""
        self._prefix = prefix + ":rl:"
        self._clock = clock
        self._script = ScriptPipeline(client, _TOKEN_BUCKET)
        self._fallback = fallback or MemoryRateLimiter()
        self.breaker = Breaker("rate_limits")

    async def hit(self, key: str, rule: BucketRule) -> None:
        decision = await self.breaker.attempt(lambda: self._script(
            [self._prefix + key], [repr(rule.rate), rule.burst, self._now()]))
        if decision is UNAVAILABLE:
            await self._fallback.hit(key, rule)
            return
        allowed, retry_after_ms = decision
        if not allowed:
            raise RateLimited("rate limit exceeded", int(retry_after_ms))

    def _now(self) -> str:
        """The script's clock argument: '' for Redis's own."""
        return "" if self._clock is None else repr(self._clock())
