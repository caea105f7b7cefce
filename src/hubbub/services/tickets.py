"""Single-use WebSocket tickets (PROTOCOL.md §1, §7), so a browser need not put its
long-lived JWT in a URL.

`POST /api/v1/ws-tickets` swaps a valid token for a random ticket valid 30 s; `/ws?ticket=`
redeems it once. The ticket remembers the identity of the token it was issued for, whose
`exp` still closes the connection with 4001. Storage sits behind the `TicketStore` seam:
process memory here, Redis (`SET … EX`, `GETDEL`) where several instances share tickets.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from hubbub.domain.errors import Unauthorized
from hubbub.domain.tokens import Identity

# §1: a ticket is valid for 30 s from its issue.
TICKET_TTL_S = 30.0
# 32 random bytes, URL-safe base64: 43 characters. Anything longer is not ours, and is
# refused before the store is asked.
_TICKET_BYTES = 32
MAX_TICKET_CHARS = 64
# The memory store forgets expired tickets every this many issues, so unredeemed tickets
# cannot pile up.
_SWEEP_EVERY = 256


class TicketStore(Protocol):
    async def put(self, ticket: str, identity: Identity, ttl_s: float) -> None:
        """Remember `ticket` for `identity` for `ttl_s` seconds."""

    async def take(self, ticket: str) -> Identity | None:
        """Return and forget the identity of `ticket` in one step; None if unknown or expired."""

    async def close(self) -> None: ...


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


@dataclass(frozen=True, slots=True)
class Ticket:
    value: str
    expires_at: int  # UTC microseconds


class TicketService:
    """Issues tickets for verified identities and redeems them once."""

    def __init__(self, store: TicketStore, *, clock: Callable[[], float] = time.time,
                 ttl_s: float = TICKET_TTL_S) -> None:
        self._store = store
        self._clock = clock
        self._ttl_s = ttl_s

    async def issue(self, identity: Identity) -> Ticket:
        """A new ticket for `identity`, valid `ttl_s` seconds."""
        value = secrets.token_urlsafe(_TICKET_BYTES)
        await self._store.put(value, identity, self._ttl_s)
        return Ticket(value, int((self._clock() + self._ttl_s) * 1_000_000))

    async def redeem(self, ticket: str) -> Identity:
        """The identity a ticket was issued for; the ticket cannot be used again.

        Raises:
            Unauthorized: unknown, used, expired, or issued for a token that has expired since.
        """
        if not ticket or len(ticket) > MAX_TICKET_CHARS:
            raise Unauthorized("invalid ticket")
        identity = await self._store.take(ticket)
        if identity is None:
            raise Unauthorized("invalid ticket: unknown, used or expired")
        if identity.expires_at <= self._clock():
            raise Unauthorized("invalid ticket: its token has expired")
        return identity
