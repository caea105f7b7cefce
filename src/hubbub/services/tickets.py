"""Single-use WebSocket tickets (PROTOCOL.md §1, §7), so a browser need not put its
long-lived JWT in a URL.

`POST /api/v1/ws-tickets` swaps a valid token for a random ticket valid 30 s; `/ws?ticket=`
redeems it once. The ticket remembers the identity of the token it was issued for, whose
`exp` still closes the connection with 4001. Storage sits behind the `TicketStore` seam
(coordination/tickets.py).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from hubbub.coordination.tickets import TicketStore
from hubbub.domain.errors import Unauthorized
from hubbub.domain.tokens import Identity

# §1: a ticket is valid for 30 s from its issue.
TICKET_TTL_S = 30.0
# 32 random bytes, URL-safe base64: 43 characters. Anything longer is not ours, and is
# refused before the store is asked.
_TICKET_BYTES = 32
MAX_TICKET_CHARS = 64


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
