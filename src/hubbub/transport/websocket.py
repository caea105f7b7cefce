"""The `/ws` endpoint (PROTOCOL.md §1): authenticate, upgrade, greet, read, clean up."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid

from aiohttp import WSMsgType, web

from hubbub.domain.clock import format_time
from hubbub.domain.errors import ChatError, RateLimited
from hubbub.domain.models import User
from hubbub.domain.tokens import Identity
from hubbub.domain.validation import MAX_ATTACHMENTS, MAX_CONTENT_CHARS
from hubbub.logs import get_logger
from hubbub.protocol.codec import encode
from hubbub.protocol.server import Connected, Limits
from hubbub.services.context import Actor
from hubbub.transport.connection import Connection
from hubbub.transport.frames import ping_frame, pong_frame, text_frame
from hubbub.transport.handshake import admit
from hubbub.transport.http import error_for, error_response
from hubbub.transport.outbox import Outbox
from hubbub.transport.server import SERVER, Server
from hubbub.transport.session import Session

log = get_logger("hubbub.ws")

# The kernel's send buffer is capped so that a client that stops reading shows up in the
# transport's own buffer (and so in the slow-consumer check) after ~this many bytes,
# instead of hiding several MiB in the kernel first.
SEND_BUFFER_BYTES = 256 * 1024
# §6 gives no wait for a user at its connection cap: a slot frees only when one of its
# connections closes, so the client is asked to back off for a while rather than hammer.
CONNECTION_CAP_RETRY_MS = 5000


async def websocket_handler(request: web.Request) -> web.StreamResponse:
    """Admit before the upgrade (403 origin, 429 rate or cap, 401 credentials), then serve."""
    server: Server = request.app[SERVER]
    if server.closing:
        return error_response(503, "UNAVAILABLE", "server shutting down")
    try:
        identity = await admit(server, request)
        user = await server.users.seen(identity)
    except ChatError as exc:
        server.metrics.count_error(exc.code)
        return error_for(exc)
    cap = server.settings.max_connections_per_user
    if not await server.connection_limit.acquire(user.id, cap):
        server.metrics.count_error(RateLimited.code)
        return error_for(RateLimited(f"more than {cap} open connections for this user",
                                     CONNECTION_CAP_RETRY_MS))
    try:
        return await _serve(server, request, identity, user)
    finally:
        await server.connection_limit.release(user.id)


async def _serve(server: Server, request: web.Request, identity: Identity,
                 user: User) -> web.StreamResponse:
    """Upgrade, greet, read until the connection ends, clean up."""
    ws = web.WebSocketResponse(
        autoping=False, compress=False,
        # aiohttp refuses a frame of max_msg_size bytes or more; §1 closes only larger ones.
        max_msg_size=server.settings.max_frame_bytes + 1,
        heartbeat=None,
    )
    await ws.prepare(request)
    transport = request.transport
    if transport is None:
        return ws
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Never hide more in the kernel than the slow-consumer bound allows to wait.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF,
                        min(SEND_BUFFER_BYTES, server.settings.max_pending_bytes))

    connection_id = str(uuid.uuid4())
    actor = Actor(user.id, user.name)
    holder: list[Connection] = []
    outbox = Outbox(
        transport, server.flusher_for_loop(), server.settings.max_pending_bytes,
        lambda: server.close_connection(holder[0], 4008, "slow consumer"),
    )
    connection = Connection(connection_id, user.id, user.name, outbox)
    holder.append(connection)
    session = Session(server, connection, actor)
    server.sockets[connection] = ws
    server.sessions[connection] = session
    server.hub.add(connection)
    server.metrics.connections_open.inc()
    await server.hub.user_ready(user.id)  # events for the user reach us before `Connected`
    await server.presence.connection_opened(user.id)
    log.info("ws.open", connection_id=connection_id, user_id=user.id)

    settings = server.settings
    outbox.push(text_frame(encode(Connected(
        user_id=user.id, user_name=user.name, connection_id=connection_id,
        server_time=format_time(time.time_ns() // 1000),
        heartbeat_interval_ms=int(settings.heartbeat_interval * 1000),
        limits=Limits(
            max_frame_bytes=settings.max_frame_bytes, max_content_chars=MAX_CONTENT_CHARS,
            max_attachments=MAX_ATTACHMENTS, history_limit_max=100, sync_limit_max=500,
            send_rate_per_s=settings.send_rate, send_burst=settings.send_burst,
            other_rate_per_s=settings.other_rate, other_burst=settings.other_burst,
        ),
    ))))
    server.metrics.count_sent("Connected")

    loop = asyncio.get_running_loop()
    expiry = loop.call_later(
        max(0.0, identity.expires_at - time.time()),
        server.close_connection, connection, 4001, "token expired",
    )
    try:
        await _read_loop(server, ws, connection, session)
    finally:
        expiry.cancel()
        outbox.close()
        server.sockets.pop(connection, None)
        server.sessions.pop(connection, None)
        server.hub.remove(connection)
        server.metrics.connections_open.dec()
        await session.close()
        await server.presence.connection_closed(user.id)
        log.info("ws.closed", connection_id=connection_id, user_id=user.id,
                 code=ws.close_code)
    return ws


async def _read_loop(server: Server, ws: web.WebSocketResponse, connection: Connection,
                     session: Session) -> None:
    while True:
        message = await ws.receive()
        connection.last_seen = time.monotonic()
        kind = message.type
        if kind is WSMsgType.TEXT:
            await session.on_text(message.data)
        elif kind is WSMsgType.BINARY:
            session.on_binary()
        elif kind is WSMsgType.PING:
            connection.outbox.push(pong_frame(message.data))
        elif kind is WSMsgType.PONG:
            continue
        else:  # CLOSE, CLOSING, CLOSED, ERROR (e.g. a frame over max_frame_bytes → 1009)
            if kind is WSMsgType.ERROR:
                log.info("ws.error", connection_id=connection.id,
                         error=type(ws.exception()).__name__)
            return


async def heartbeat(server: Server) -> None:
    """Ping every connection each interval; close those silent for longer than the timeout.

    One task for all connections, instead of a timer per connection.
    """
    settings = server.settings
    frame = ping_frame(b"hb")
    while True:
        await asyncio.sleep(settings.heartbeat_interval)
        deadline = time.monotonic() - settings.heartbeat_timeout
        for connection in list(server.sockets):
            if connection.last_seen < deadline:
                server.close_connection(connection, 1011, "heartbeat timeout")
            else:
                connection.outbox.push(frame)
