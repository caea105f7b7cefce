"""The `/ws` endpoint (PROTOCOL.md §1): authenticate, upgrade, greet, read, clean up."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from hubbub import logs
from hubbub.config import Settings
from hubbub.coordination.connection_limit import ConnectionLimiter
from hubbub.delivery.connection import Connection
from hubbub.delivery.frames import pong_frame, text_frame
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
from hubbub.services.inbox import InboxService
from hubbub.services.presence import PresenceService
from hubbub.services.users import UserService
from hubbub.transport.http.bodies import error_for, error_response
from hubbub.transport.http.errors import failure_response
from hubbub.transport.metrics import Metrics
from hubbub.transport.server import CLOSE_TIMEOUT_S, Lifecycle
from hubbub.transport.websocket.admission import Admission, admit
from hubbub.transport.websocket.connections import Connections, cut_off
from hubbub.transport.websocket.expiry import Expiries
from hubbub.transport.websocket.session import Session, SessionParts

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


ENDPOINT = web.AppKey("websocket", Endpoint)


async def websocket_handler(request: web.Request) -> web.StreamResponse:
    """Admit before the upgrade (403 origin, 429 rate or cap, 401 credentials), then serve.

    An idle connection's cost is mostly what stays alive while it waits, so this one
    coroutine does it all: the middlewares pass `/ws` straight through, so it tracks itself
    for shutdown and answers its own failures as they would.
    """
    door = request.app[ENDPOINT]
    task = asyncio.current_task()
    if task is not None:
        door.lifecycle.requests.add(task)
    try:
        admitted = await _admitted(door, request)
        if isinstance(admitted, web.Response):
            return admitted
        identity, user = admitted
        user_id = user.id
        try:
            ws = _response(door.settings)
            await ws.prepare(request)
            transport = request.transport
            if transport is None:
                return ws
            connection, session = _open(door, ws, transport, user)
            expiry = await _started(door, connection, identity)
            # The connection has what is needed from here on; these would otherwise stay
            # for its whole life.
            del identity, user, admitted
            try:
                while True:  # read until the connection ends
                    message = await ws.receive()
                    connection.last_seen = time.monotonic()
                    kind = message.type
                    if kind is WSMsgType.TEXT:
                        await session.on_text(message.data)
                    elif kind is WSMsgType.BINARY:
                        await session.on_binary()
                    elif kind is WSMsgType.PING:
                        connection.outbox.push(pong_frame(message.data))
                    elif kind is WSMsgType.PONG:
                        continue
                    else:  # CLOSE, CLOSING, CLOSED, ERROR (a frame over max_frame_bytes: 1009)
                        if kind is WSMsgType.ERROR:
                            log.info("ws.error", connection_id=connection.id,
                                     error=type(ws.exception()).__name__)
                        break
            finally:
                door.expiries.discard(connection, expiry)
                await _closed(door, ws, connection, session)
            return ws
        finally:
            await door.connection_limit.release(user_id)
    except Exception as exc:
        return failure_response(door.metrics, request, exc)
    finally:
        if task is not None:
            door.lifecycle.requests.discard(task)


async def _started(door: Endpoint, connection: Connection, identity: Identity) -> int:
    """Announce an upgraded connection and greet it; its key in the expiries."""
    # Every line logged for this connection, here and in the tasks it starts, says which
    # one it was (logs.py); the task ends with the connection.
    logs.connection_id.set(connection.id)
    user_id = connection.user_id
    await door.hub.user_ready(user_id)  # events for the user reach us before `Connected`
    await door.presence.connection_opened(user_id)
    if door.inbox is not None and not door.hub.inbox.has_user(user_id):
        # The user's first connection here: count its conversations from the store (one
        # listing), so every connection hears their changes (PROTOCOL.md §4.1).
        await door.hub.open_inbox(user_id, await door.inbox.entries(user_id))
    log.info("ws.open", connection_id=connection.id, user_id=user_id)
    _greet(door, connection)
    return door.expiries.add(connection, identity.expires_at)


async def _admitted(door: Endpoint, request: web.Request
                    ) -> tuple[Identity, User] | web.Response:
    """The caller and its user, holding a slot of its connection cap; or the refusal."""
    if door.lifecycle.closing:
        return error_response(503, Code.UNAVAILABLE, "server shutting down")
    try:
        identity = await admit(door.admission, request)
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


def _response(settings: Settings) -> web.WebSocketResponse:
    return web.WebSocketResponse(
        autoping=False, compress=False,
        # aiohttp refuses a frame of max_msg_size bytes or more; §1 closes only larger ones.
        max_msg_size=settings.max_frame_bytes + 1,
        heartbeat=None,
    )


def _open(door: Endpoint, ws: web.WebSocketResponse, transport: asyncio.Transport,
          user: User) -> tuple[Connection, Session]:
    """Register an upgraded connection with the registry and the hub."""
    max_pending = door.settings.max_pending_bytes
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Never hide more in the kernel than the slow-consumer bound allows to wait.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF,
                        min(SEND_BUFFER_BYTES, max_pending))
    outbox = Outbox(transport, door.connections.flusher, max_pending, held=True)
    connection = Connection(str(uuid.uuid4()), user.id, user.name, outbox)
    session = Session(door.sessions, connection)
    outbox.on_overflow = session.slow_consumer  # a bound method: no closure per connection
    door.connections.add(connection, ws, session)
    door.hub.add(connection)
    door.metrics.connections_open.inc()
    return connection, session


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


async def _closed(door: Endpoint, ws: web.WebSocketResponse, connection: Connection,
                  session: Session) -> None:
    """Forget a connection that ended; waits for its in-flight requests."""
    # Whoever closed (a peer may send its close frame and then read nothing more), the
    # socket goes at most CLOSE_TIMEOUT_S later, with what is still queued for it.
    asyncio.get_running_loop().call_later(CLOSE_TIMEOUT_S, cut_off, connection.outbox.transport)
    connection.outbox.close()
    door.connections.discard(connection)
    door.hub.remove(connection)
    door.metrics.connections_open.dec()
    await session.close()
    await door.presence.connection_closed(connection.user_id)
    log.info("ws.closed", connection_id=connection.id, user_id=connection.user_id,
             code=ws.close_code)
