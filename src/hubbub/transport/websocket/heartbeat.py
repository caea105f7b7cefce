"""The heartbeat of PROTOCOL.md §1: a ping per interval, and 1011 for a silent peer."""

from __future__ import annotations

import asyncio
import time

from hubbub.delivery.frames import ping_frame
from hubbub.transport.websocket.connections import Connections


async def heartbeat(connections: Connections, interval: float, silence: float) -> None:
    """Ping every connection each interval; close those silent for longer than `silence`.

    One task for all connections, instead of a timer per connection.
    """
    frame = ping_frame(b"hb")
    while True:
        await asyncio.sleep(interval)
        deadline = time.monotonic() - silence
        for connection in list(connections.sockets):
            if connection.last_seen < deadline:
                connections.close(connection, 1011, "heartbeat timeout")
            else:
                connection.outbox.push(frame)
