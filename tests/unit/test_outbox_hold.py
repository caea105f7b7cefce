"""A new connection's outbox is held until its greeting: events that reach it while the
connection is being set up (its user's inbox, a message) wait, and `Connected` is written
first (PROTOCOL.md §1)."""

from __future__ import annotations

import asyncio

from hubbub.delivery.frames import text_frame
from hubbub.delivery.outbox import Flusher, Outbox
from tests.unit.test_fanout import FakeTransport


async def test_a_held_outbox_writes_nothing_until_released_then_the_greeting_first() -> None:
    transport = FakeTransport()
    outbox = Outbox(transport, Flusher(asyncio.get_running_loop()), 1 << 20,  # type: ignore[arg-type]
                    held=True)
    outbox.push(text_frame(b"summary"))
    outbox.push(text_frame(b"message"))
    await asyncio.sleep(0.01)  # ticks pass: a flush would have written by now
    assert transport.writes == []
    outbox.release(text_frame(b"connected"))
    await asyncio.sleep(0.01)
    assert transport.frames() == [b"connected", b"summary", b"message"]
    outbox.push(text_frame(b"later"))
    await asyncio.sleep(0.01)
    assert transport.frames()[-1] == b"later"


async def test_an_outbox_not_held_writes_at_the_end_of_the_tick() -> None:
    transport = FakeTransport()
    outbox = Outbox(transport, Flusher(asyncio.get_running_loop()), 1 << 20)  # type: ignore[arg-type]
    outbox.push(text_frame(b"now"))
    await asyncio.sleep(0.01)
    assert transport.frames() == [b"now"]
