"""Token expiry (PROTOCOL.md §1: close with 4001 once `exp` passes), for all connections.

A timer per connection cost ~0.5 KiB each (a TimerHandle and its arguments). Instead,
connections wait in buckets keyed by the whole second after their `exp`, and one task
closes each bucket's connections when its second has come: at most ~1 s late, never early.
Adding and removing a connection are O(1); a closed connection leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

from hubbub.delivery.connection import Connection


class Expiries:
    """Open connections by the second at which their token has expired (epoch seconds)."""

    __slots__ = ("_buckets", "_swept")

    def __init__(self) -> None:
        self._buckets: dict[int, set[Connection]] = {}
        # The last second whose bucket was closed; later buckets are still waiting.
        self._swept = math.floor(time.time())

    def add(self, connection: Connection, expires_at: float) -> int:
        """Schedule the connection's close; returns the key that `discard` needs."""
        # An `exp` already passed (within the verifier's leeway) goes to the next sweep.
        key = max(math.ceil(expires_at), self._swept + 1)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = set()
        bucket.add(connection)
        return key

    def discard(self, connection: Connection, key: int) -> None:
        """Forget a connection that closed (idempotent)."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.discard(connection)
            if not bucket:
                del self._buckets[key]

    def due(self, now: float) -> list[Connection]:
        """Take the connections whose `exp` is at or before `now`."""
        current = math.floor(now)
        if current < self._swept:
            # The wall clock went back: wait for it to reach the remaining buckets again.
            self._swept = current
            return []
        expired: list[Connection] = []
        buckets = self._buckets
        keys: range | list[int] = range(self._swept + 1, current + 1)
        if len(keys) > len(buckets):  # a long stall or a clock jump: look only at what exists
            keys = [key for key in buckets if key <= current]
        for key in keys:
            bucket = buckets.pop(key, None)
            if bucket:
                expired.extend(bucket)
        self._swept = current
        return expired


async def expire_tokens(expiries: Expiries,
                        close: Callable[[Connection, int, str], None]) -> None:
    """Close each connection with 4001 within ~1 s after its token's `exp`."""
    while True:
        now = time.time()
        # Wake just after the next whole second, when the next bucket is due.
        await asyncio.sleep(math.floor(now) + 1.001 - now)
        for connection in expiries.due(time.time()):
            close(connection, 4001, "token expired")
