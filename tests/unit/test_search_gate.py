"""The search gate (adapters/sql/search_budget.py): slots per instance and per user, a short
wait, then RATE_LIMITED; a cancelled waiter leaves no trace."""

from __future__ import annotations

import asyncio
import time

import pytest

from hubbub.adapters.sql.search_budget import QUEUE_WAIT_S, RETRY_AFTER_MS, SearchGate
from hubbub.domain.errors import RateLimited

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_users_second_search_waits_then_is_refused() -> None:
    """One running search per user: the second waits QUEUE_WAIT_S, then RATE_LIMITED with
    a retry time, while another user's search gets the free slot at once."""
    gate = SearchGate(2)
    async with gate.slot("alice"):
        started = time.monotonic()
        with pytest.raises(RateLimited) as refused:
            async with gate.slot("alice"):
                pytest.fail("a second slot for alice")
        assert time.monotonic() - started >= QUEUE_WAIT_S * 0.9
        assert refused.value.retry_after_ms == RETRY_AFTER_MS
        async with asyncio.timeout(0.1), gate.slot("bob"):
            pass


async def test_searches_beyond_the_slots_wait_for_one_to_free() -> None:
    """With every slot taken, a search gets the first one given back within the wait."""
    gate = SearchGate(1)
    freed = asyncio.Event()

    async def hold() -> None:
        async with gate.slot("alice"):
            await freed.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    asyncio.get_running_loop().call_later(0.1, freed.set)
    async with asyncio.timeout(QUEUE_WAIT_S), gate.slot("bob"):
        assert freed.is_set()
    await holder


async def test_a_cancelled_waiter_gives_back_what_it_held() -> None:
    """A search cancelled while waiting (its connection closed) takes no slot with it."""
    gate = SearchGate(1)
    async with gate.slot("alice"):
        waiter = asyncio.create_task(gate.slot("bob").__aenter__())
        await asyncio.sleep(0.05)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    bob = gate.slot("bob")
    async with asyncio.timeout(0.1):
        await bob.__aenter__()  # at once: nothing of the cancelled wait is left
    with pytest.raises(RateLimited):  # the only slot is bob's now
        async with gate.slot("carol"):
            pytest.fail("two slots out of one")
    await bob.__aexit__(None, None, None)
