"""Helpers of the SDK tests: bounded waits on a client's events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from hubbub.client import Event

WITHIN = 15.0


async def next_event(events: AsyncIterator[Event], within: float = WITHIN) -> Event:
    """The next event, failing the test after `within` seconds."""
    return await asyncio.wait_for(anext(events), within)
