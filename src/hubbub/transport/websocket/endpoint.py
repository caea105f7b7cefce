"""The `/ws` endpoint (PROTOCOL.md §1): authenticate, upgrade, greet, and clean up after.

The frames in between are socket_protocol.py's.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from hubbub import logs
from hubbub.config import Settings
from hubbub.coordination.connection_limit import ConnectionLimiter
from hubbub.delivery.connection import Connection
from hubbub.delivery.frames import text_frame
from hubbub.delivery.hub import Hub
from hubbub.delivery.outbox import Outbox
from hubbub.domain.clock import format_time
from hubbub.domain.errors import ChatError, Code, RateLimited
from hubbub.domain.limits import (
    HISTORY_LIMIT_MAX,
    MAX_ATTACHMENTS,
    MAX_CONTENT_CHARS,
    MAX_EMOJI_PER_MESSAGE,
    MAX_MENTIONS,
    MAX_REACTIONS_PER_USER,
    SYNC_LIMIT_MAX,
)
from hubbub.domain.models import User
from hubbub.domain.tokens import Identity
from hubbub.logs import get_logger
from hubbub.protocol.codec import encode
from hubbub.protocol.server import Connected, Limits
from hubbub.services.context import new_id
from hubbub.services.inbox import InboxService
from hubbub.services.presence import PresenceService
from hubbub.services.users import UserService
from hubbub.transport.http.bodies import error_for, error_response
from hubbub.transport.metrics import Metrics
from hubbub.transport.server import CLOSE_TIMEOUT_S, Lifecycle
from hubbub.transport.websocket.admission import Admission, admit
from hubbub.transport.websocket.connections import Connections, cut_off
from hubbub.transport.websocket.expiry import Expiries
from hubbub.transport.websocket.handshake import Head, accepted, upgrade_key
from hubbub.transport.websocket.session import Session, SessionParts
from hubbub.transport.websocket.socket_protocol import ServerWebSocket

log = get_logger("hubbub.ws")

# The kernel's send buffer is capped so that a client that stops reading shows up in the
# transport's own buffer (and so in the slow-consumer check) after ~this many bytes,
# instead of hiding several MiB in the kernel first.
SEND_BUFFER_BYTES = 256 * 1024
# §6 gives no wait for a user at its connection cap: a slot frees only when one of its
# connections closes, so the client is asked to back off for a while rather than hammer.
CONNECTION_CAP_RETRY_MS = 5000


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What `/ws` uses, built once by app.py: the checks, the user and presence services,
    the connection cap, the registry of open connections, the hub, and the sessions'
    shared parts."""

    settings: Settings
    lifecycle: Lifecycle
    admission: Admission
    users: UserService
    presence: PresenceService
    inbox: InboxService | None
    connection_limit: ConnectionLimiter
    connections: Connections
    expiries: Expiries
    hub: Hub
    metrics: Metrics
    sessions: SessionParts
    # `Connected.limits`: the same for every connection, so encoded into each greeting
    # from one Struct.
    limits: Limits
    ws_path: str  # for the access log's line of each connection
    access_log: logging.Logger | None

    def close(self, connection: Connection, code: int, reason: str) -> None:
        self.connections.close(connection, code, reason)

    def answered(self, status: int) -> None:
        """Count a handshake answered without aiohttp, as its `on_response_prepare` would."""
        self.metrics.http_requests.labels(self.ws_path, "GET", str(status)).inc()

    def log_access(self, status: int, seconds: float) -> None:
        """The access log's line for a handshake answered without aiohttp (for a 101, at
        the connection's end, as aiohttp logs it)."""
        if self.access_log is not None:
            self.access_log.info("http.access", extra={
                "method": "GET", "path": self.ws_path, "status": status,
                "duration_ms": round(seconds * 1000, 2), "request_id": None})

    def finish(self, ws: ServerWebSocket) -> None:
        """A greeted connection's socket is gone: forget it, in a task shutdown waits for."""
        task = asyncio.get_running_loop().create_task(_finish(self, ws))
        self.lifecycle.requests.add(task)
        task.add_done_callback(self.lifecycle.requests.discard)


ENDPOINT = web.AppKey("websocket", Endpoint)


async def upgrade(door: Endpoint, head: Head, transport: asyncio.Transport,
                  hand_over: Callable[[ServerWebSocket], None],
                  ended: asyncio.Future[None] | None = None) -> web.Response | None:
    """Admit before the upgrade (403 origin, 429 rate or cap, 401 credentials), then
    answer `101`, give the transport to the connection's protocol (`hand_over`) and greet.

    Returns the refusal to send instead, or None once upgraded: the connection then lives
    in its protocol and ends in `_finish`, which resolves `ended`.
    """
    task = asyncio.current_task()
    if task is not None:
        door.lifecycle.requests.add(task)
    socket: ServerWebSocket | None = None
    holding: str | None = None  # the user whose cap slot this holds until `_finish` has it
    try:
        admitted = await _admitted(door, head)
        if isinstance(admitted, web.Response):
            return admitted
        identity, user = admitted
        holding = user.id
        key = upgrade_key(head)
        if key is None or transport.is_closing():
            holding = None
            await door.connection_limit.release(user.id)
            return error_response(400, Code.BAD_REQUEST,
                                  "expected a WebSocket upgrade (RFC 6455 §4.1)")
        transport.write(accepted(key))
        socket = _open(door, transport, user, ended)
        holding = None  # released by `_finish` from here on
        hand_over(socket)
        socket.expiry = await _started(door, socket.connection, identity)
        socket.opened()
        return None
    except Exception:
        log.exception("ws.upgrade_failed")
        door.metrics.count_error(Code.INTERNAL_ERROR)
        if socket is None:
            if holding is not None:
                await door.connection_limit.release(holding)
            return error_response(500, Code.INTERNAL_ERROR, "internal error")
        door.connections.close(socket.connection, 1011, "internal error")
        socket.opened()  # ends it once the close is done
        return None
    finally:
        if task is not None:
            door.lifecycle.requests.discard(task)


async def websocket_handler(request: web.Request) -> web.StreamResponse:
    """`/ws` as an aiohttp route: a handshake that was not its connection's first request
    (a proxy reusing a kept-alive connection), or one the listener left to aiohttp.

    The handler lives as long as its connection, as aiohttp's would, so that aiohttp leaves
    the transport alone meanwhile; its answer goes nowhere, the socket being gone.
    """
    door = request.app[ENDPOINT]
    transport = request.transport
    if transport is None:  # the client left before its handler started
        return web.Response(status=499)
    ended = asyncio.get_running_loop().create_future()
    refusal = await upgrade(door, Head(request.raw_path, request.headers, request.remote),
                            transport, transport.set_protocol, ended)
    if refusal is not None:
        return refusal
    await ended
    return web.Response(status=101)


async def _admitted(door: Endpoint, head: Head) -> tuple[Identity, User] | web.Response:
    """The caller and its user, holding a slot of its connection cap; or the refusal."""
    if door.lifecycle.closing:
        return error_response(503, Code.UNAVAILABLE, "server shutting down")
    try:
        identity = await admit(door.admission, head)
        user = await door.users.seen(identity)
    except ChatError as exc:
        door.metrics.count_error(exc.code)
        return error_for(exc)
    cap = door.settings.max_connections_per_user
    if not await door.connection_limit.acquire(user.id, cap):
        door.metrics.count_error(RateLimited.code)
        return error_for(RateLimited(f"more than {cap} open connections for this user",
                                     CONNECTION_CAP_RETRY_MS))
    return identity, user


async def _started(door: Endpoint, connection: Connection, identity: Identity) -> int:
    """Announce an upgraded connection and greet it; its key in the expiries."""
    # Every line logged for this connection, here and in the tasks it starts, says which
    # one it was (logs.py).
    logs.connection_id.set(connection.id)
    user_id = connection.user_id
    await door.hub.user_ready(user_id)  # events for the user reach us before `Connected`
    await door.presence.connection_opened(user_id)
    if door.inbox is not None and not door.hub.inbox.has_user(user_id):
        # The user's first connection here: count its conversations from the store (one
        # listing), so every connection hears their changes (PROTOCOL.md §4.1).
        await door.hub.open_inbox(user_id, await door.inbox.entries(user_id))
    # At debug: `ws.closed` says who was connected and for how long, one line per
    # connection at info, like an access log; a line at every connect cost ~15 % of the
    # handshake (docs/DECISIONS.md "The connect path, round 4").
    log.debug("ws.open", connection_id=connection.id, user_id=user_id)
    _greet(door, connection)
    return door.expiries.add(connection, identity.expires_at)


def _open(door: Endpoint, transport: asyncio.Transport, user: User,
          ended: asyncio.Future[None] | None) -> ServerWebSocket:
    """Register an upgraded connection with the registry and the hub."""
    settings = door.settings
    max_pending = settings.max_pending_bytes
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Never hide more in the kernel than the slow-consumer bound allows to wait.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF,
                        min(SEND_BUFFER_BYTES, max_pending))
    outbox = Outbox(transport, door.connections.flusher, max_pending, held=True)
    # Not `uuid4`: its `os.urandom` gives up the GIL on every call (services/context.py).
    connection = Connection(new_id(), user.id, user.name, outbox)
    session = Session(door.sessions, connection)
    outbox.on_overflow = session.slow_consumer  # a bound method: no closure per connection
    ws = ServerWebSocket(transport, connection, session, settings.max_frame_bytes, door)
    ws.ended = ended
    door.connections.add(connection, ws, session)
    door.hub.add(connection)
    door.metrics.connections_open.inc()
    return ws


def greeting_limits(settings: Settings) -> Limits:
    """`Connected.limits` (PROTOCOL.md §4): the bounds of domain/limits.py and the
    configured ones."""
    return Limits(
        max_frame_bytes=settings.max_frame_bytes, max_content_chars=MAX_CONTENT_CHARS,
        max_attachments=MAX_ATTACHMENTS, history_limit_max=HISTORY_LIMIT_MAX,
        sync_limit_max=SYNC_LIMIT_MAX,
        send_rate_per_s=settings.send_rate, send_burst=settings.send_burst,
        other_rate_per_s=settings.other_rate, other_burst=settings.other_burst,
        max_reaction_emoji_per_message=MAX_EMOJI_PER_MESSAGE,
        max_reactions_per_user_per_message=MAX_REACTIONS_PER_USER,
        conversations_per_hour=settings.conversations_per_hour,
        conversation_burst=settings.conversation_burst,
        max_mentions=MAX_MENTIONS,
    )


def _greet(door: Endpoint, connection: Connection) -> None:
    """Write `Connected`, the first frame of every connection (PROTOCOL.md §1), ahead of
    the events that reached the held outbox meanwhile."""
    connection.outbox.release(text_frame(encode(Connected(
        user_id=connection.user_id, user_name=connection.user_name,
        connection_id=connection.id,
        server_time=format_time(time.time_ns() // 1000),
        heartbeat_interval_ms=int(door.settings.heartbeat_interval * 1000),
        limits=door.limits,
    ))))
    door.metrics.count_sent("Connected")


async def _finish(door: Endpoint, ws: ServerWebSocket) -> None:
    """Release all a connection held; waits for its in-flight requests."""
    connection = ws.connection
    logs.connection_id.set(connection.id)
    # Whoever closed (a peer may send its close frame and then read nothing more), the
    # socket goes at most CLOSE_TIMEOUT_S later, with what is still queued for it.
    asyncio.get_running_loop().call_later(CLOSE_TIMEOUT_S, cut_off, ws.transport)
    try:
        if ws.expiry is not None:
            door.expiries.discard(connection, ws.expiry)
        connection.outbox.close()
        door.connections.discard(connection)
        door.hub.remove(connection)
        door.metrics.connections_open.dec()
        await ws.session.close()
        await door.presence.connection_closed(connection.user_id)
        log.info("ws.closed", connection_id=connection.id, user_id=connection.user_id,
                 code=ws.close_code,
                 duration_ms=round((time.monotonic() - ws.opened_at) * 1000, 2))
    finally:
        await door.connection_limit.release(connection.user_id)
        if ws.ended is not None:
            if not ws.ended.done():  # its route handler may have been cancelled meanwhile
                ws.ended.set_result(None)
        else:
            door.log_access(101, time.monotonic() - ws.opened_at)
