"""The `/ws` endpoint (PROTOCOL.md §1): authenticate, upgrade, greet, read, clean up."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid

from aiohttp import WSMsgType, web

from hubbub import logs
from hubbub.domain.clock import format_time
from hubbub.domain.errors import ChatError, Code, RateLimited
from hubbub.domain.limits import (
    HISTORY_LIMIT_MAX,
    MAX_ATTACHMENTS,
    MAX_CONTENT_CHARS,
    MAX_EMOJI_PER_MESSAGE,
    MAX_REACTIONS_PER_USER,
    SYNC_LIMIT_MAX,
)
from hubbub.domain.models import User
from hubbub.logs import get_logger
from hubbub.protocol.codec import encode
from hubbub.protocol.server import Connected, Limits
from hubbub.transport.connection import Connection
from hubbub.transport.frames import ping_frame, pong_frame, text_frame
from hubbub.transport.handshake import admit
from hubbub.transport.http import error_for, error_response
from hubbub.transport.outbox import Outbox
from hubbub.transport.rest import failure_response
from hubbub.transport.server import CLOSE_TIMEOUT_S, SERVER, Server, cut_off
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
    """Admit before the upgrade (403 origin, 429 rate or cap, 401 credentials), then serve.

    An idle connection's cost is mostly what stays alive while it waits, so this one
    coroutine does it all: the middlewares pass `/ws` straight through, so it tracks itself
    for shutdown and answers its own failures as they would.
    """
    server: Server = request.app[SERVER]
    task = asyncio.current_task()
    if task is not None:
        server.requests.add(task)
    try:
        if server.closing:
            return error_response(503, Code.UNAVAILABLE, "server shutting down")
        try:
            identity = await admit(server, request)
            user = await server.users.seen(identity)
        except ChatError as exc:
            server.metrics.count_error(exc.code)
            return error_for(exc)
        user_id = user.id
        cap = server.settings.max_connections_per_user
        if not await server.connection_limit.acquire(user_id, cap):
            server.metrics.count_error(RateLimited.code)
            return error_for(RateLimited(f"more than {cap} open connections for this user",
                                         CONNECTION_CAP_RETRY_MS))
        try:
            ws = _response(server)
            await ws.prepare(request)
            transport = request.transport
            if transport is None:
                return ws
            connection, session = _open(server, ws, transport, user)
            # Every line logged for this connection, here and in the tasks it starts, says
            # which one it was (logs.py); the task ends with the connection.
            logs.connection_id.set(connection.id)
            await server.hub.user_ready(user_id)  # events for the user reach us before `Connected`
            await server.presence.connection_opened(user_id)
            log.info("ws.open", connection_id=connection.id, user_id=user_id)
            _greet(server, connection)
            expiry = server.expiries.add(connection, identity.expires_at)
            # The connection has what is needed from here on; these would otherwise stay
            # for its whole life.
            del identity, user
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
                server.expiries.discard(connection, expiry)
                await _closed(server, ws, connection, session)
            return ws
        finally:
            await server.connection_limit.release(user_id)
    except Exception as exc:
        return failure_response(server, request, exc)
    finally:
        if task is not None:
            server.requests.discard(task)


def _response(server: Server) -> web.WebSocketResponse:
    return web.WebSocketResponse(
        autoping=False, compress=False,
        # aiohttp refuses a frame of max_msg_size bytes or more; §1 closes only larger ones.
        max_msg_size=server.settings.max_frame_bytes + 1,
        heartbeat=None,
    )


def _open(server: Server, ws: web.WebSocketResponse, transport: asyncio.Transport,
          user: User) -> tuple[Connection, Session]:
    """Register an upgraded connection with the server and the hub."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Never hide more in the kernel than the slow-consumer bound allows to wait.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF,
                        min(SEND_BUFFER_BYTES, server.settings.max_pending_bytes))
    outbox = Outbox(transport, server.flusher_for_loop(), server.settings.max_pending_bytes)
    connection = Connection(str(uuid.uuid4()), user.id, user.name, outbox)
    session = Session(server, connection)
    outbox.on_overflow = session.slow_consumer  # a bound method: no closure per connection
    server.sockets[connection] = ws
    server.sessions[connection] = session
    server.hub.add(connection)
    server.metrics.connections_open.inc()
    return connection, session


def _greet(server: Server, connection: Connection) -> None:
    """Queue `Connected`, the first frame of every connection (PROTOCOL.md §1)."""
    settings = server.settings
    connection.outbox.push(text_frame(encode(Connected(
        user_id=connection.user_id, user_name=connection.user_name,
        connection_id=connection.id,
        server_time=format_time(time.time_ns() // 1000),
        heartbeat_interval_ms=int(settings.heartbeat_interval * 1000),
        limits=Limits(
            max_frame_bytes=settings.max_frame_bytes, max_content_chars=MAX_CONTENT_CHARS,
            max_attachments=MAX_ATTACHMENTS, history_limit_max=HISTORY_LIMIT_MAX,
            sync_limit_max=SYNC_LIMIT_MAX,
            send_rate_per_s=settings.send_rate, send_burst=settings.send_burst,
            other_rate_per_s=settings.other_rate, other_burst=settings.other_burst,
            max_reaction_emoji_per_message=MAX_EMOJI_PER_MESSAGE,
            max_reactions_per_user_per_message=MAX_REACTIONS_PER_USER,
            conversations_per_hour=settings.conversations_per_hour,
            conversation_burst=settings.conversation_burst,
        ),
    ))))
    server.metrics.count_sent("Connected")


async def _closed(server: Server, ws: web.WebSocketResponse, connection: Connection,
                  session: Session) -> None:
    """Forget a connection that ended; waits for its in-flight requests."""
    # Whoever closed (a peer may send its close frame and then read nothing more), the
    # socket goes at most CLOSE_TIMEOUT_S later, with what is still queued for it.
    asyncio.get_running_loop().call_later(CLOSE_TIMEOUT_S, cut_off, connection.outbox.transport)
    connection.outbox.close()
    server.sockets.pop(connection, None)
    server.sessions.pop(connection, None)
    server.hub.remove(connection)
    server.metrics.connections_open.dec()
    await session.close()
    await server.presence.connection_closed(connection.user_id)
    log.info("ws.closed", connection_id=connection.id, user_id=connection.user_id,
             code=ws.close_code)


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
