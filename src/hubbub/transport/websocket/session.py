"""One connection's conversation with the server: decode, limit, call, answer.

Every client message gets exactly one direct response carrying its `request_id`
(PROTOCOL.md §2). Each message is handled in its own task so that a connection's sends can
share a commit (group commit); tasks start in arrival order and reach the store in that
order; an invalid frame is answered before the next frame is read. Responses go through
the connection's Outbox like every other frame. What each message does is its row in
actions.py; nothing here decides an application rule.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hubbub.coordination.ratelimit import RateLimiter
from hubbub.delivery.connection import Connection
from hubbub.delivery.frames import text_frame
from hubbub.domain.errors import ChatError, Code, RateLimited
from hubbub.domain.ratelimit import BucketRule
from hubbub.logs import get_logger
from hubbub.protocol import client as c
from hubbub.protocol.codec import DecodeError, decode_client_message, encode
from hubbub.protocol.server import Error, ServerMessage
from hubbub.services.context import Actor
from hubbub.transport.metrics import Metrics
from hubbub.transport.websocket.actions import ACTIONS, Actions

log = get_logger("hubbub.session")

# PROTOCOL.md §6: more than this many RATE_LIMITED errors within the window closes with 1008.
FLOOD_ERRORS = 100
FLOOD_WINDOW_S = 10.0
# A client may pipeline this many requests before the server stops reading its socket.
MAX_IN_FLIGHT = 256
_SEND_CLASS = (c.SendMessage, c.EditMessage)
# Requests whose answer is all they do: when the connection is gone nobody reads it, so
# `close` cancels them instead of waiting (a search then stops its query at once).
_ABANDONABLE = (c.SearchMessages,)


@dataclass(frozen=True, slots=True)
class SessionParts:
    """What every session of this instance uses (one record, shared by all of them)."""

    actions: Actions
    limiter: RateLimiter
    send_rule: BucketRule
    other_rule: BucketRule
    metrics: Metrics
    # A closed connection stops its typing (services/typing.py).
    typing_closed: Callable[[str], Awaitable[None]]
    # Close a connection with a code of PROTOCOL.md §1 (connections.py).
    close: Callable[[Connection, int, str], None]


class Session:
    """Handles the client messages of one connection.

    Most connections sit idle, so the containers and the Actor are made on first use (an
    empty set, a Semaphore and a list cost ~0.4 KiB per connection).
    """

    __slots__ = ("_abandonable", "_actor", "_connection", "_limited", "_parts", "_slots",
                 "_tasks", "draining", "flooded")

    def __init__(self, parts: SessionParts, connection: Connection) -> None:
        self._parts = parts
        self._connection = connection
        self._actor: Actor | None = None
        self._tasks: set[asyncio.Task[None]] | None = None
        self._abandonable: set[asyncio.Task[None]] | None = None
        self._slots: asyncio.Semaphore | None = None
        self._limited: list[float] | None = None
        self.flooded = False
        # Set by a graceful shutdown: new frames are refused, in-flight ones finish.
        self.draining = False

    async def on_text(self, data: str) -> None:
        """Handle one text frame; returns once the work is under way."""
        try:
            message: c.AnyClientMessage | Error = decode_client_message(data)
        except DecodeError as exc:
            message = Error(code=Code.BAD_REQUEST, message=exc.message, request_id=exc.request_id)
        else:
            self._parts.metrics.count_received(type(message).__name__)
        await self._start(message)

    async def on_binary(self) -> None:
        await self._start(Error(code=Code.BAD_REQUEST,
                                message="binary frames are not supported; send JSON text frames"))

    async def _start(self, message: c.AnyClientMessage | Error) -> None:
        """Run one request in a task of its own, at most MAX_IN_FLIGHT at once.

        An invalid frame comes as the `Error` that answers it, and takes a rate-limit token
        like any request (docs/DECISIONS.md "Invalid frames"), but here, before the next
        frame is read: a connection sending garbage has one check in flight, not 256, so
        it cannot queue hundreds of them (Redis round trips) ahead of other users' requests.
        """
        if self.draining:
            self._refuse_while_draining(message)
            return
        if isinstance(message, Error):
            await self._run(message)
            return
        slots = self._slots
        if slots is None:
            slots = self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        await slots.acquire()
        if self.draining:
            slots.release()
            self._refuse_while_draining(message)
            return
        task = asyncio.get_running_loop().create_task(self._run(message))
        tasks = self._tasks
        if tasks is None:
            tasks = self._tasks = set()
        tasks.add(task)
        if isinstance(message, _ABANDONABLE):
            if self._abandonable is None:
                self._abandonable = set()
            self._abandonable.add(task)
        task.add_done_callback(self._done)

    async def drain(self) -> None:
        """Refuse new frames and wait for the in-flight requests (graceful shutdown).

        Waits without gathering, so cancelling the drain never cancels a request.
        """
        self.draining = True
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    def _refuse_while_draining(self, message: c.AnyClientMessage | Error) -> None:
        if isinstance(message, Error):  # invalid all the same
            self._reply(message)
            return
        # No code of §4 says "unavailable"; the connection closes with 1001 right after, and
        # nothing of this request was stored, so the client retries it once reconnected.
        self._reply(Error(code=Code.INTERNAL_ERROR, request_id=message.request_id,
                          message="server shutting down: reconnect and retry"))

    async def close(self) -> None:
        """Cancel the abandonable requests, wait for the others (their responses are dropped
        if the socket is gone)."""
        for task in self._abandonable or ():
            task.cancel()
        # A closed connection stops its typing at once, and again after a Typing that was
        # still in flight.
        await self._parts.typing_closed(self._connection.id)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._parts.typing_closed(self._connection.id)

    def _done(self, task: asyncio.Task[None]) -> None:
        if self._tasks is not None:
            self._tasks.discard(task)
        if self._abandonable is not None:
            self._abandonable.discard(task)
        if self._slots is not None:
            self._slots.release()

    async def _run(self, message: c.AnyClientMessage | Error) -> None:
        request_id = message.request_id
        parts = self._parts
        response: ServerMessage
        try:
            sends = isinstance(message, _SEND_CLASS)
            await parts.limiter.hit(("s:" if sends else "o:") + self._connection.user_id,
                                    parts.send_rule if sends else parts.other_rule)
            # An invalid frame took its token like any other action (§6): a sender of
            # garbage is answered RATE_LIMITED past its budget, and closed as a flooder.
            if isinstance(message, Error):
                response = message
            else:
                actor = self._actor
                if actor is None:
                    actor = self._actor = Actor(self._connection.user_id,
                                                self._connection.user_name)
                response = await ACTIONS[type(message)](parts.actions, actor,
                                                        self._connection, message)
        except ChatError as exc:
            response = Error(code=exc.code, message=exc.message, request_id=request_id)
            if isinstance(exc, RateLimited):
                response = Error(code=exc.code, message=exc.message, request_id=request_id,
                                 retry_after_ms=exc.retry_after_ms)
        except Exception:
            log.exception("request.failed", type=type(message).__name__,
                          connection_id=self._connection.id)
            response = Error(code=Code.INTERNAL_ERROR, message="internal error",
                             request_id=request_id)
        self._reply(response)
        if isinstance(response, Error) and response.code == Code.RATE_LIMITED:
            # After the reply: the client sees the error that crossed the line, then 1008.
            self._note_rate_limited()

    @property
    def connection(self) -> Connection:
        return self._connection

    def slow_consumer(self) -> None:
        """The outbox's overflow callback: close with 4008 (PROTOCOL.md §1)."""
        self._parts.close(self._connection, 4008, "slow consumer")

    def _reply(self, message: ServerMessage) -> None:
        if isinstance(message, Error):
            self._parts.metrics.count_error(message.code)
        self._parts.metrics.count_sent(type(message).__name__)
        self._connection.outbox.push(text_frame(encode(message)))

    def _note_rate_limited(self) -> None:
        now = time.monotonic()
        if self._limited is None:
            self._limited = []
        self._limited.append(now)
        if len(self._limited) > FLOOD_ERRORS:
            cutoff = now - FLOOD_WINDOW_S
            self._limited = [t for t in self._limited if t > cutoff]
            if len(self._limited) > FLOOD_ERRORS and not self.flooded:
                self.flooded = True
                self._parts.close(self._connection, 1008, "rate limit abuse")

