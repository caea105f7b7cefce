"""Token buckets of this process (PROTOCOL.md §6): the single-instance `RateLimiter`, and
the Redis one's fallback."""

from __future__ import annotations

import time
from collections.abc import Callable

from hubbub.domain.errors import RateLimited
from hubbub.domain.ratelimit import BucketRule, BucketState, refill_time, take

# Forgetting full buckets keeps memory bounded by the users active in the last moments.
_SWEEP_EVERY = 10_000


class MemoryRateLimiter:
    """Token buckets of this process only (the fallback without Redis)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[BucketState, BucketRule]] = {}
        self._hits = 0

    async def hit(self, key: str, rule: BucketRule) -> None:
        now = self._clock()
        entry = self._buckets.get(key)
        decision = take(rule, entry[0] if entry else None, now)
        self._buckets[key] = (decision.state, rule)
        self._hits += 1
        if self._hits % _SWEEP_EVERY == 0:
            self._sweep(now)
        if not decision.allowed:
            raise RateLimited("rate limit exceeded", decision.retry_after_ms)

    def _sweep(self, now: float) -> None:
        for key, (state, rule) in list(self._buckets.items()):
            if now - state.updated_at >= refill_time(rule, state):
                del self._buckets[key]


class Unlimited:
    """`HUBBUB_RATE_LIMITS=off`: for load tests and benchmarks only."""

    async def hit(self, key: str, rule: BucketRule) -> None:
        return None
