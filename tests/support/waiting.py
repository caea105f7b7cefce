"""Waiting for a condition that other tasks or processes make true."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

# Generous: the suite shares two cores with other work.
DEFAULT_WITHIN = 15.0


async def until(condition: Callable[[], bool | Awaitable[bool]], what: str,
                within: float = DEFAULT_WITHIN, every: float = 0.02) -> None:
    """Poll `condition` until it holds; fail naming `what` after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within} s waiting until {what}")
        await asyncio.sleep(every)
