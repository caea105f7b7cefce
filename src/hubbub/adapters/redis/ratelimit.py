"""Token buckets shared by every instance (PROTOCOL.md §6): one Lua script per check,
atomic, with the arithmetic of domain/ratelimit.py and Redis's clock (one clock for every
instance)."""

from __future__ import annotations

from collections.abc import Callable

from redis.asyncio import Redis

from hubbub.adapters.memory.ratelimit import MemoryRateLimiter
from hubbub.adapters.redis.client import UNAVAILABLE, Breaker, ScriptPipeline
from hubbub.coordination.ratelimit import RateLimiter
from hubbub.domain.errors import RateLimited
from hubbub.domain.ratelimit import BucketRule

# domain/ratelimit.py `take`, step for step, on the state {t: tokens, u: updated_at}.
# ARGV: rate, burst, now ('' = Redis's clock). Returns {allowed 0/1, retry_after_ms}.
_TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now
if ARGV[3] ~= '' then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local state = redis.call('HMGET', KEYS[1], 't', 'u')
local tokens
if state[1] then
  local elapsed = now - tonumber(state[2])
  if elapsed < 0 then elapsed = 0 end
  tokens = math.min(burst, tonumber(state[1]) + elapsed * rate)
else
  tokens = burst
end
local allowed = 0
local retry = 0
if tokens >= 1 - 1e-9 then
  tokens = math.max(0, tokens - 1)
  allowed = 1
elseif rate > 0 then
  retry = math.max(1, math.ceil((1 - tokens) / rate * 1000))
else
  retry = 3600000
end
redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens),
           'u', string.format('%.17g', now))
local ttl = 3600000
if rate > 0 then ttl = math.ceil((burst - tokens) / rate * 1000) + 1000 end
redis.call('PEXPIRE', KEYS[1], ttl)
return {allowed, retry}
"""



class RedisRateLimiter:
    """Token buckets shared by every instance; the same math as domain/ratelimit.py.

    Buckets expire once they would be full again, so Redis holds only recent users.
    """

    def __init__(self, client: Redis, prefix: str,
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


