"""The hub's gap timers on the loop production runs (uvloop), when the loop lags behind a
deadline (delivery/hub.py `_arm`)."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import uvloop

from hubbub.adapters.memory.bus import MemoryBus
from hubbub.bus.envelope import Envelope, envelope_encoder
from hubbub.bus.topics import conversation_topic
from hubbub.delivery.connection import Connection
from hubbub.delivery.hub import Hub
from hubbub.delivery.outbox import Flusher, Outbox

ROOM = "room"
# Short, so the lag that outlasts it is short too.
HOLD_S = 0.05


def test_a_gap_rearmed_after_its_deadline_passed_keeps_the_bus_handler_working() -> None:
    """The loop stalls while events are held; the next arrival re-arms the gate's timer at a
    deadline already passed (uvloop returns a plain Handle, without `when()`), and a
    further event in the same tick must still be handled: every event reaches the socket
    in version order, and no callback fails."""
    assert uvloop.run(_lagging_room()) == ([1, 2, 3, 5, 6], [])


async def _lagging_room() -> tuple[list[int], list[dict[str, Any]]]:
    loop = asyncio.get_running_loop()
    failures: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: failures.append(context))
    bus = MemoryBus()
    hub = Hub(bus, lambda kind, n: None, reorder_hold=HOLD_S)
    await bus.start(hub.on_bus)
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    connection = Connection("c", "u", "u", Outbox(transport, Flusher(loop), 1 << 20))
    hub.add(connection)
    hub.join(connection, ROOM)

    def publish(version: int) -> None:
        payload = b'{"v":%d}' % version
        bus.publish(conversation_topic(ROOM), envelope_encoder.encode(
            Envelope("NewMessage", payload, version=version)))

    publish(1)  # the baseline
    publish(3)  # early: held, its timer armed
    await asyncio.sleep(0.01)
    publish(5)  # early too, held a little later than 3
    await asyncio.sleep(0.01)
    # One tick: the loop stalls past both deadlines, then 2 arrives (releasing 2 and 3, and
    # re-arming for 5 at a deadline now passed) and 6 right behind it.
    loop.call_soon(time.sleep, 2 * HOLD_S)
    publish(2)
    publish(6)
    received: list[int] = []
    data = b""
    while len(received) < 5:
        data += await asyncio.wait_for(loop.sock_recv(theirs, 4096), 5)
        while len(data) >= 2 and len(data) >= 2 + data[1]:
            received.append(int(data[2:2 + data[1]].decode().strip('{"v:}')))
            data = data[2 + data[1]:]
    transport.close()
    theirs.close()
    return received, failures
