"""The ticket seam (PROTOCOL.md §1): single-use WebSocket tickets any instance redeems,
once — process memory for one instance, Redis (`SET … PX`, `GETDEL`) for many."""

from __future__ import annotations

from typing import Protocol

from hubbub.domain.tokens import Identity


class TicketStore(Protocol):
    async def put(self, ticket: str, identity: Identity, ttl_s: float) -> None:
        """Remember `ticket` for `identity` for `ttl_s` seconds."""

    async def take(self, ticket: str) -> Identity | None:
        """Return and forget the identity of `ticket` in one step; None if unknown or expired."""

    async def close(self) -> None: ...
