"""WebSocket tickets of this process (PROTOCOL.md §1): the single-instance `TicketStore`,
and the Redis one's fallback."""

from __future__ import annotations

import time
from collections.abc import Callable

from hubbub.domain.tokens import Identity

# Expired tickets are forgotten every this many issues, so unredeemed tickets cannot pile up.
_SWEEP_EVERY = 256


class MemoryTicketStore:
    """Tickets of this process (the single-instance default)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tickets: dict[str, tuple[Identity, float]] = {}
        self._puts = 0

    async def put(self, ticket: str, identity: Identity, ttl_s: float) -> None:
        now = self._clock()
        self._tickets[ticket] = (identity, now + ttl_s)
        self._puts += 1
        if self._puts % _SWEEP_EVERY == 0:
            self._tickets = {k: v for k, v in self._tickets.items() if v[1] > now}

    async def take(self, ticket: str) -> Identity | None:
        entry = self._tickets.pop(ticket, None)
        if entry is None or entry[1] <= self._clock():
            return None
        return entry[0]

    def __len__(self) -> int:
        return len(self._tickets)

    async def close(self) -> None:
        return None
