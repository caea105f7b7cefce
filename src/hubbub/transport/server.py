"""The running server's parts, as the HTTP and WebSocket handlers need them."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from hubbub.bus.base import Bus
from hubbub.config import Settings
from hubbub.coordination.connection_limit import ConnectionLimiter
from hubbub.coordination.ratelimit import RateLimiter
from hubbub.logs import get_logger
from hubbub.services.authentication import Authenticator
from hubbub.services.calls import CallService
from hubbub.services.conversations import ConversationService
from hubbub.services.messages import MessageService
from hubbub.services.presence import PresenceService
from hubbub.services.reactions import ReactionService
from hubbub.services.receipts import ReceiptService
from hubbub.services.search import SearchService
from hubbub.services.sync import SyncService
from hubbub.services.tickets import TicketService
from hubbub.services.typing import TypingService
from hubbub.services.users import UserService
from hubbub.storage.database import Database
from hubbub.transport.connection import Connection
from hubbub.transport.expiry import Expiries
from hubbub.transport.hub import Hub
from hubbub.transport.metrics import Metrics
from hubbub.transport.outbox import Flusher

if TYPE_CHECKING:
    from hubbub.transport.session import Session

log = get_logger("hubbub.server")

# A connection we close is gone this long after the decision, whatever its peer does: time
# to read what is queued and answer our close frame (docs/DECISIONS.md "Closing handshake").
CLOSE_TIMEOUT_S = 2.0


@dataclass
class Server:
    settings: Settings
    database: Database
    bus: Bus
    hub: Hub
    metrics: Metrics
    limiter: RateLimiter
    authenticator: Authenticator
    users: UserService
    messages: MessageService
    conversations: ConversationService
    presence: PresenceService
    # PROTOCOL.md §3 conversation features.
    search: SearchService
    sync: SyncService
    typing: TypingService
    receipts: ReceiptService
    reactions: ReactionService
    # PROTOCOL.md §6 open connections per user, and §1 single-use tickets.
    connection_limit: ConnectionLimiter
    tickets: TicketService
    # PROTOCOL.md §3 calls.
    calls: CallService
    flusher: Flusher | None = None
    sockets: dict[Connection, web.WebSocketResponse] = field(default_factory=dict)
    background: set[asyncio.Task[None]] = field(default_factory=set)
    closing: bool = False
    # What a graceful shutdown waits for: each connection's session (to drain its
    # in-flight requests) and every HTTP or WebSocket request still being handled.
    sessions: dict[Connection, Session] = field(default_factory=dict)
    requests: set[asyncio.Task[Any]] = field(default_factory=set)
    # Open connections by when their token expires (one sweep instead of a timer each).
    expiries: Expiries = field(default_factory=Expiries)

    def flusher_for_loop(self) -> Flusher:
        """The one Flusher of this server's event loop (made on first use)."""
        if self.flusher is None:
            self.flusher = Flusher(asyncio.get_running_loop())
        return self.flusher

    def close_connection(self, connection: Connection, code: int, reason: str) -> None:
        """Close one connection with a close code of PROTOCOL.md §1 (from sync code).

        Every path that drops a connection ends here, and so in `cut_off` at the deadline:
        also a connection that aiohttp is already closing by itself (the heartbeat then
        reaps it as well).
        """
        ws = self.sockets.get(connection)
        if ws is None:
            return
        loop = asyncio.get_running_loop()
        if not ws.closed:
            self.metrics.closes.labels(str(code)).inc()
            log.info("ws.closing", connection_id=connection.id, user_id=connection.user_id,
                     code=code, reason=reason)
            connection.outbox.flush()
            connection.outbox.close()
            task = loop.create_task(_close(ws, code, reason))
            self.background.add(task)
            task.add_done_callback(self.background.discard)
        loop.call_later(CLOSE_TIMEOUT_S, cut_off, connection.outbox.transport)


def cut_off(transport: asyncio.Transport) -> None:
    """Drop a connection's socket now, with whatever it still had to send.

    `close()` would wait for the write buffer to drain, which never happens while the peer
    keeps TCP open without reading; `abort()` discards it, and the connection's handler
    then ends (hub, counts, presence and its cap slot released). A no-op on a transport
    already gone.
    """
    transport.abort()


async def _close(ws: web.WebSocketResponse, code: int, reason: str) -> None:
    """Send the close frame; `cut_off` ends what the peer does not finish in time."""
    with contextlib.suppress(TimeoutError, ConnectionError):
        await asyncio.wait_for(ws.close(code=code, message=reason.encode()), CLOSE_TIMEOUT_S)


SERVER = web.AppKey("server", Server)
