"""Graceful shutdown (SIGTERM), within `shutdown_grace` seconds.

    aiohttp stops listening                      (before on_shutdown runs)
    → drain: each session answers new frames with an Error and finishes the requests it
      has in flight (at most half of the budget)
    → a moment for events committed during the drain to reach the local outboxes
    → flush every outbox and close its connection with 1001 (PROTOCOL.md §1)
    → wait for every HTTP and WebSocket handler to finish
    → at the deadline, cut off (abort) whatever is still open, closing or not

The store and the bus close after this, in the app's cleanup. No acknowledged message is
lost: an acknowledgement is sent only after its commit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from aiohttp import web

from hubbub.logs import get_logger
from hubbub.transport.http.bodies import http_only
from hubbub.transport.server import LIFECYCLE, Lifecycle
from hubbub.transport.websocket.connections import Connections, cut_off

log = get_logger("hubbub.shutdown")

# Long enough for an event published on the bus (a Redis round trip included) to come back
# to this instance's hub before the connections close; short against any grace period.
SETTLE_S = 0.05


def reserve(grace: float) -> float:
    """The part of the grace period kept for what runs after `shut_down`: aiohttp's own
    handler shutdown and closing the store and the bus."""
    return min(1.0, grace * 0.2)


def handler_timeout(grace: float) -> float:
    """aiohttp's `shutdown_timeout`: it may wait twice this for a handler still running after
    `shut_down` (first to finish, then to cancel), so two of it fit in the reserve."""
    return reserve(grace) / 2


async def _tracked(request: web.Request,
                   handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                   ) -> web.StreamResponse:
    """Keep the set of requests being handled, so shutdown can wait for them (`/ws` adds
    itself)."""
    lifecycle = request.app.get(LIFECYCLE)
    task = asyncio.current_task()
    if lifecycle is None or task is None:
        return await handler(request)
    lifecycle.requests.add(task)
    try:
        return await handler(request)
    finally:
        lifecycle.requests.discard(task)


track_requests = http_only(_tracked)


async def shut_down(lifecycle: Lifecycle, connections: Connections, grace: float) -> None:
    """Finish in-flight work and close every connection with 1001 before the deadline."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + max(0.0, grace - reserve(grace))
    lifecycle.closing = True
    open_connections = len(connections.sockets)

    drains = [loop.create_task(session.drain())
              for session in list(connections.sessions.values())]
    if drains:
        halfway = started + (deadline - started) / 2
        _, late = await asyncio.wait(drains, timeout=max(0.0, halfway - loop.time()))
        for task in late:
            task.cancel()
    await asyncio.sleep(max(0.0, min(SETTLE_S, deadline - loop.time())))

    for connection in list(connections.sockets):
        connections.close(connection, 1001, "server shutting down")
    # A connection ends when its peer answers the close (or at `cut_off`'s deadline), and
    # only then starts the task that releases what it held: wait for both.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(connections.emptied(), max(0.0, deadline - loop.time()))
    pending = {task for task in lifecycle.requests if not task.done()}
    if pending:
        await asyncio.wait(pending, timeout=max(0.0, deadline - loop.time()))

    # Whatever is still open here, closing or not (a transport closing with a full buffer
    # would wait for its peer forever), goes now; its handler then ends.
    remaining = list(connections.sockets)
    for connection in remaining:
        cut_off(connection.outbox.transport)
    log.info("shutdown.drained", connections=open_connections, cut_off=len(remaining),
             seconds=round(loop.time() - started, 3))
