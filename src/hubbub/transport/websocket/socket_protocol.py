"""One upgraded connection as an asyncio protocol: frames in, the close handshake, the end.

An idle connection is this object and what it points to, and no task: frames are read as
the loop hands over bytes, and a task runs only while frames wait for the session (which
answers each in order; docs/DECISIONS.md "The upgrade outside aiohttp"). Everything written
goes through the connection's Outbox, but the close frame, which follows what the outbox
still held.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from hubbub import logs
from hubbub.delivery.connection import Connection
from hubbub.delivery.frames import close_frame, pong_frame
from hubbub.logs import get_logger
from hubbub.transport.websocket.session import Session
from hubbub.transport.websocket.wire import (
    BINARY,
    CLOSE,
    PING,
    TEXT,
    FrameReader,
    Violation,
    close_payload,
)

log = get_logger("hubbub.ws")

# Frames read ahead of the session before the socket stops being read (the session itself
# pipelines up to MAX_IN_FLIGHT requests).
MAX_WAITING_FRAMES = 64
# RFC 6455 §7.1.5: the code a close frame without one stands for.
NO_STATUS = 1005

_OPENING, _OPEN, _CLOSING, _CLOSED = range(4)


class Owner(Protocol):
    """Who a socket reports to (the endpoint): one object shared by all of them."""

    def close(self, connection: Connection, code: int, reason: str) -> None:
        """Close with a code of PROTOCOL.md §1: counted, logged, and cut off at the deadline."""

    def finish(self, ws: ServerWebSocket) -> None:
        """The socket is gone and its greeting was sent: release what the connection held."""


class ServerWebSocket(asyncio.Protocol):
    """The protocol of one connection once `101 Switching Protocols` is written."""

    __slots__ = ("_finished", "_greeted", "_owner", "_reader", "_reading", "_state", "_waiting",
                 "close_code", "connection", "ended", "expiry", "opened_at", "session",
                 "transport")

    def __init__(self, transport: asyncio.Transport, connection: Connection, session: Session,
                 max_frame_bytes: int, owner: Owner) -> None:
        self.transport = transport
        self.connection = connection
        self.session = session
        self._reader = FrameReader(max_frame_bytes)
        self._owner = owner
        # Set by the endpoint: the aiohttp route's wait, the expiry key, for the access log.
        self.ended: asyncio.Future[None] | None = None
        self.expiry: int | None = None
        self.opened_at = time.monotonic()
        self._state = _OPENING
        self._greeted = False
        self._finished = False
        self._waiting: list[str | bytes] | None = None  # text (str) and binary messages
        self._reading: asyncio.Task[None] | None = None
        self.close_code: int | None = None

    @property
    def closed(self) -> bool:
        """A close frame was sent or received, or the socket is gone."""
        return self._state >= _CLOSING

    def opened(self) -> None:
        """The greeting is out: hand the frames that came meanwhile to the session."""
        self._greeted = True
        if self._state >= _CLOSING:
            self._finish()
            return
        if self._state == _OPENING:
            self._state = _OPEN
        self._read_waiting()

    def data_received(self, data: bytes) -> None:
        if self._state == _CLOSED:
            return
        self.connection.last_seen = time.monotonic()
        try:
            for opcode, payload in self._reader.feed(data):
                if opcode in (TEXT, BINARY):
                    if self._state < _CLOSING:
                        self._wait(payload)
                    continue
                assert isinstance(payload, bytes)  # a control frame's
                if opcode == PING:
                    if self._state < _CLOSING:
                        self.connection.outbox.push(pong_frame(payload))
                elif opcode == CLOSE:
                    self._peer_closed(payload)
                    return
        except Violation as exc:
            log.info("ws.error", connection_id=self.connection.id, code=exc.code,
                     error=exc.reason)
            self._owner.close(self.connection, exc.code, exc.reason)
            return
        self._read_waiting()

    def _wait(self, message: str | bytes) -> None:
        waiting = self._waiting
        if waiting is None:
            waiting = self._waiting = []
        waiting.append(message)
        if len(waiting) == MAX_WAITING_FRAMES:
            self.transport.pause_reading()

    def _read_waiting(self) -> None:
        if self._waiting and self._state == _OPEN and self._reading is None:
            self._reading = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        """Hand the waiting frames to the session, in order, then end."""
        logs.connection_id.set(self.connection.id)  # for the lines of the tasks started here
        session = self.session
        try:
            while self._waiting and self._state == _OPEN:
                waiting, self._waiting = self._waiting, None
                for message in waiting:
                    if self._state != _OPEN:
                        break
                    if isinstance(message, str):
                        await session.on_text(message)
                    else:
                        await session.on_binary()
                # Paused at the bound: read on, unless closing. A peer that flooded us until
                # we closed is not read any more (its frames would only be dropped); its
                # socket goes at Connections.close's deadline.
                if len(waiting) >= MAX_WAITING_FRAMES and self._state < _CLOSING:
                    self.transport.resume_reading()
        finally:
            self._reading = None

    def _peer_closed(self, payload: bytes) -> None:
        """Answer the peer's close frame with its code (RFC 6455 §5.5.1), then hang up."""
        try:
            code, _ = close_payload(payload)
        except Violation as exc:
            code = None
            answer = exc.code
        else:
            answer = 1000 if code is None else code
        if self._state < _CLOSING:
            self.close_code = NO_STATUS if code is None else code
            self._state = _CLOSING
            self.connection.outbox.flush()
            self.connection.outbox.close()
            self.transport.write(close_frame(answer))
        self.transport.close()
        self._finish()

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake; the peer's close frame (or the deadline that
        Connections.close set) ends the connection."""
        if self._state >= _CLOSING:
            return
        self._state = _CLOSING
        self.close_code = code
        self.transport.write(close_frame(code, reason))
        self._finish()

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._state = _CLOSED
        self.connection.outbox.close()
        if self.close_code is None:
            self.close_code = 1006  # RFC 6455 §7.1.5: gone without a close frame
        self._finish()

    def _finish(self) -> None:
        """The connection is over once a close frame went out or the socket is gone (the
        transport may linger until the peer answers): release what it held, once, and
        only after its greeting."""
        if self._greeted and not self._finished:
            self._finished = True
            self._owner.finish(self)
