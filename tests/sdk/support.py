"""Helpers of the SDK tests: bounded waits on a client's events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

from hubbub.client import Backoff, Event

WITHIN = 15.0
# Quick reconnects, so that tests of losses run in seconds.
FAST = Backoff(initial=0.05, maximum=0.5, after_shutdown=0.5)


async def next_event(events: AsyncIterator[Event], within: float = WITHIN) -> Event:
    """The next event, failing the test after `within` seconds."""
    return await asyncio.wait_for(anext(events), within)


E = TypeVar("E", bound=Event)


async def next_of(events: AsyncIterator[Event], kind: type[E], within: float = WITHIN) -> E:
    """The next event of `kind` (others skipped), failing after `within` seconds."""
    async def find() -> E:
        async for event in events:
            if isinstance(event, kind):
                return event
        raise AssertionError(f"the client closed before a {kind.__name__}")
    return await asyncio.wait_for(find(), within)
