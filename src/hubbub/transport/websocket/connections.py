"""The open WebSocket connections of this instance, and the one way each is closed."""

from __future__ import annotations

import asyncio

from aiohttp import web

from hubbub.delivery.connection import Connection
from hubbub.delivery.outbox import Flusher
from hubbub.logs import get_logger
from hubbub.transport.metrics import Metrics
from hubbub.transport.server import CLOSE_TIMEOUT_S
from hubbub.transport.websocket.session import Session
from hubbub.transport.websocket.socket_protocol import ServerWebSocket

log = get_logger("hubbub.server")


class Connections:
    """Each open connection's socket and session, and the one Flusher of this event loop
    (made with the registry, in the loop)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self.flusher = Flusher(asyncio.get_running_loop())
        self.sockets: dict[Connection, ServerWebSocket] = {}
        # What a graceful shutdown drains: each connection's in-flight requests.
        self.sessions: dict[Connection, Session] = {}
        self._emptied: asyncio.Future[None] | None = None

    def add(self, connection: Connection, ws: ServerWebSocket, session: Session) -> None:
        self.sockets[connection] = ws
        self.sessions[connection] = session

    def discard(self, connection: Connection) -> None:
        self.sockets.pop(connection, None)
        self.sessions.pop(connection, None)
        if not self.sockets and self._emptied is not None and not self._emptied.done():
            self._emptied.set_result(None)

    async def emptied(self) -> None:
        """Wait until no connection is left (a graceful shutdown, after closing them all)."""
        if not self.sockets:
            return
        if self._emptied is None or self._emptied.done():
            self._emptied = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._emptied)

    def close(self, connection: Connection, code: int, reason: str) -> None:
        """Close one connection with a close code of PROTOCOL.md §1 (from sync code).

        Every path that drops a connection ends here, and so in `cut_off` at the deadline:
        also one already closing (its peer's close frame answered, or a close of ours
        unanswered: the heartbeat then reaps it as well).
        """
        ws = self.sockets.get(connection)
        if ws is None:
            return
        if not ws.closed:
            self._metrics.closes.labels(str(code)).inc()
            log.info("ws.closing", connection_id=connection.id, user_id=connection.user_id,
                     code=code, reason=reason)
            connection.outbox.flush()
            connection.outbox.close()
            ws.close(code, reason)
        asyncio.get_running_loop().call_later(CLOSE_TIMEOUT_S, cut_off,
                                              connection.outbox.transport)


def cut_off(transport: asyncio.Transport) -> None:
    """Drop a connection's socket now, with whatever it still had to send.

    `close()` would wait for the write buffer to drain, which never happens while the peer
    keeps TCP open without reading; `abort()` discards it, and the connection's handler
    then ends (hub, counts, presence and its cap slot released). A no-op on a transport
    already gone.
    """
    transport.abort()


# The open connections, for the shutdown that drains and closes them.
CONNECTIONS = web.AppKey("connections", Connections)
