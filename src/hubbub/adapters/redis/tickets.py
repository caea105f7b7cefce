"""WebSocket tickets any instance can redeem, once (PROTOCOL.md §1)."""

from __future__ import annotations

from typing import Any

import msgspec

from hubbub.adapters.memory.tickets import MemoryTicketStore
from hubbub.adapters.redis.client import UNAVAILABLE, Breaker
from hubbub.adapters.redis.topology import RedisClient
from hubbub.coordination.tickets import TicketStore
from hubbub.domain.tokens import Identity


class _TicketRecord(msgspec.Struct, array_like=True, frozen=True):
    user_id: str
    name: str | None
    expires_at: float


_ticket_encoder = msgspec.msgpack.Encoder()
_ticket_decoder = msgspec.msgpack.Decoder(_TicketRecord)


class RedisTicketStore:
    """The `TicketStore` across instances (coordination/tickets.py): a ticket issued by one
    instance is redeemed on any, once (`SET … PX`, then `GETDEL`: take is one atomic step).

    While Redis is down, tickets are kept in this process: they still work when the
    WebSocket lands on the instance that issued them.
    """

    def __init__(self, client: RedisClient, prefix: str,
                 fallback: TicketStore | None = None) -> None:
        self._client = client
        self._prefix = prefix + ":ticket:"
        self._fallback = fallback or MemoryTicketStore()
        self.breaker = Breaker("tickets")

    async def put(self, ticket: str, identity: Identity, ttl_s: float) -> None:
        stored = await self.breaker.attempt(lambda: self._set(ticket, identity, ttl_s))
        if stored is UNAVAILABLE:
            await self._fallback.put(ticket, identity, ttl_s)

    async def _set(self, ticket: str, identity: Identity, ttl_s: float) -> None:
        record = _TicketRecord(identity.user_id, identity.name, identity.expires_at)
        await self._client.set(self._prefix + ticket, _ticket_encoder.encode(record),
                               px=max(1, int(ttl_s * 1000)))

    async def take(self, ticket: str) -> Identity | None:
        """This process's tickets first (issued here while Redis was down), then Redis's."""
        local = await self._fallback.take(ticket)
        if local is not None:
            return local
        raw = await self.breaker.attempt(lambda: self._getdel(ticket))
        if not isinstance(raw, bytes):  # unknown, or Redis unavailable
            return None
        try:
            record = _ticket_decoder.decode(raw)
        except msgspec.DecodeError:
            return None
        return Identity(record.user_id, record.name, record.expires_at)

    async def _getdel(self, ticket: str) -> Any:
        return await self._client.getdel(self._prefix + ticket)

    async def close(self) -> None:
        await self._fallback.close()
