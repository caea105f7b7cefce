"""Single-use WebSocket tickets (PROTOCOL.md §1) with a clock the test controls."""

from __future__ import annotations

import pytest

from hubbub.adapters.memory.tickets import MemoryTicketStore
from hubbub.domain.errors import Unauthorized
from hubbub.domain.tokens import Identity
from hubbub.services.tickets import TICKET_TTL_S, TicketService

pytestmark = pytest.mark.asyncio(loop_scope="session")

ALICE = Identity("6f1c2a9e-3b7d-4c55-9a1e-0d2f4b6c8a10", "alice", expires_at=10_000.0)


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def service(clock: Clock) -> TicketService:
    return TicketService(MemoryTicketStore(clock), clock=clock)


async def test_a_ticket_redeems_to_its_identity() -> None:
    """A fresh ticket gives back the identity it was issued for."""
    clock = Clock()
    tickets = service(clock)
    ticket = await tickets.issue(ALICE)
    assert ticket.expires_at == int((clock.now + TICKET_TTL_S) * 1_000_000)
    assert await tickets.redeem(ticket.value) == ALICE


async def test_a_ticket_is_single_use() -> None:
    """The second redemption of a ticket is refused."""
    tickets = service(Clock())
    ticket = await tickets.issue(ALICE)
    await tickets.redeem(ticket.value)
    with pytest.raises(Unauthorized):
        await tickets.redeem(ticket.value)


async def test_a_ticket_expires_after_30_seconds() -> None:
    """A ticket still works just before 30 s and is refused from 30 s on."""
    clock = Clock()
    tickets = service(clock)
    early, late = await tickets.issue(ALICE), await tickets.issue(ALICE)
    clock.now += TICKET_TTL_S - 0.01
    assert await tickets.redeem(early.value) == ALICE
    clock.now += 0.01
    with pytest.raises(Unauthorized):
        await tickets.redeem(late.value)


async def test_a_ticket_of_an_expired_token_is_refused() -> None:
    """A ticket outliving its token's `exp` no longer opens a connection."""
    clock = Clock()
    tickets = service(clock)
    ticket = await tickets.issue(Identity(ALICE.user_id, None, expires_at=clock.now + 5))
    clock.now += 5
    with pytest.raises(Unauthorized):
        await tickets.redeem(ticket.value)


@pytest.mark.parametrize("value", ["", "nope", "x" * 10_000])
async def test_unknown_or_oversized_tickets_are_refused(value: str) -> None:
    """Anything that is not an issued ticket is Unauthorized."""
    with pytest.raises(Unauthorized):
        await service(Clock()).redeem(value)


async def test_expired_tickets_are_swept() -> None:
    """Unredeemed tickets do not pile up in memory once expired."""
    clock = Clock()
    store = MemoryTicketStore(clock)
    tickets = TicketService(store, clock=clock)
    for _ in range(300):
        await tickets.issue(ALICE)
        clock.now += 1.0
    assert len(store) < 300
