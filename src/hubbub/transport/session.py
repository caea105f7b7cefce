"""One connection's conversation with the server: decode, limit, dispatch, respond.

Every client message gets exactly one direct response carrying its `request_id`
(PROTOCOL.md §2). Each message is handled in its own task so that a connection's sends can
share a commit (group commit); tasks start in arrival order and reach the store in that
order. Responses go through the connection's Outbox like every other frame.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, assert_never

from hubbub.domain.clock import format_time
from hubbub.domain.errors import BadRequest, ChatError, RateLimited
from hubbub.logs import get_logger
from hubbub.protocol import client as c
from hubbub.protocol.codec import DecodeError, decode_client_message, encode
from hubbub.protocol.server import (
    ActionConfirmed,
    Error,
    HistoryChunk,
    Pong,
    ServerMessage,
)
from hubbub.services.context import Actor
from hubbub.services.views import conversation_object, message_object
from hubbub.transport.connection import Connection
from hubbub.transport.frames import text_frame

if TYPE_CHECKING:
    from hubbub.transport.server import Server

log = get_logger("hubbub.session")

# PROTOCOL.md §6: more than this many RATE_LIMITED errors within the window closes with 1008.
FLOOD_ERRORS = 100
FLOOD_WINDOW_S = 10.0
# A client may pipeline this many requests before the server stops reading its socket.
MAX_IN_FLIGHT = 256
_SEND_CLASS = (c.SendMessage, c.EditMessage)


class Session:
    """Handles the client messages of one connection."""

    def __init__(self, server: Server, connection: Connection, actor: Actor) -> None:
        self._server = server
        self._connection = connection
        self._actor = actor
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._limited: list[float] = []
        self.flooded = False

    async def on_text(self, data: str) -> None:
        """Handle one text frame; returns once the work is under way."""
        try:
            message = decode_client_message(data)
        except DecodeError as exc:
            self._reply(Error(code="BAD_REQUEST", message=exc.message,
                              request_id=exc.request_id))
            return
        self._server.metrics.count_received(type(message).__name__)
        await self._slots.acquire()
        task = asyncio.get_running_loop().create_task(self._run(message))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def on_binary(self) -> None:
        self._reply(Error(code="BAD_REQUEST",
                          message="binary frames are not supported; send JSON text frames"))

    async def close(self) -> None:
        """Wait for in-flight requests (their responses are dropped if the socket is gone)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def _run(self, message: c.AnyClientMessage) -> None:
        request_id = message.request_id
        try:
            rule = (self._server.settings.send_rule if isinstance(message, _SEND_CLASS)
                    else self._server.settings.other_rule)
            await self._server.limiter.hit(
                ("s:" if isinstance(message, _SEND_CLASS) else "o:") + self._actor.user_id, rule
            )
            response = await self._dispatch(message)
        except ChatError as exc:
            response = Error(code=exc.code, message=exc.message, request_id=request_id)
            if isinstance(exc, RateLimited):
                response = Error(code=exc.code, message=exc.message, request_id=request_id,
                                 retry_after_ms=exc.retry_after_ms)
                self._note_rate_limited()
        except Exception:
            log.exception("request.failed", type=type(message).__name__,
                          connection_id=self._connection.id)
            response = Error(code="INTERNAL_ERROR", message="internal error",
                             request_id=request_id)
        self._reply(response)

    async def _dispatch(self, message: c.AnyClientMessage) -> ServerMessage:
        """One case per client message type of PROTOCOL.md §3."""
        server, actor, rid = self._server, self._actor, message.request_id
        action = type(message).__name__
        match message:
            case c.SendMessage():
                started = time.perf_counter()
                outcome = await server.messages.send(
                    actor, message.conversation_id, message.content, message.parent_id,
                    message.attachments, message.client_message_id,
                )
                server.metrics.send_commit.observe(time.perf_counter() - started)
                return ActionConfirmed(action=action, request_id=rid,
                                       message=message_object(outcome.message))
            case c.EditMessage():
                edited = await server.messages.edit(actor, message.message_id, message.content)
                return ActionConfirmed(action=action, request_id=rid,
                                       message=message_object(edited))
            case c.DeleteMessage():
                deleted = await server.messages.delete(actor, message.message_id)
                return ActionConfirmed(action=action, request_id=rid, message_id=deleted.id)
            case c.JoinConversation():
                conversation, role = await server.conversations.join(
                    actor, message.conversation_id
                )
                server.hub.join(self._connection, conversation.id)
                return ActionConfirmed(action=action, request_id=rid, role=role,
                                       conversation=conversation_object(conversation, role))
            case c.LeaveConversation():
                server.hub.leave(self._connection, message.conversation_id)
                return ActionConfirmed(action=action, request_id=rid)
            case c.FetchHistory():
                page = await server.messages.history(
                    actor, message.conversation_id, message.before, message.limit
                )
                return HistoryChunk(
                    conversation_id=message.conversation_id,
                    messages=[message_object(m) for m in page.messages],
                    has_more=page.has_more,
                    next_before=page.messages[0].seq if page.messages else None,
                    request_id=rid,
                )
            case c.Ping():
                return Pong(timestamp=message.timestamp,
                            server_time=format_time(time.time_ns() // 1000), request_id=rid)
            case (c.SearchMessages() | c.SyncMessages() | c.Typing() | c.MarkAsRead()
                  | c.MarkAsDelivered() | c.AddReaction() | c.RemoveReaction()
                  | c.CallOffer() | c.CallAnswer() | c.ICECandidate() | c.CallHangup()
                  | c.CallReject()):
                raise BadRequest(f"{action} is not supported by this server yet")
            case _:
                assert_never(message)

    @property
    def connection(self) -> Connection:
        return self._connection

    def _reply(self, message: ServerMessage) -> None:
        if isinstance(message, Error):
            self._server.metrics.count_error(message.code)
        self._server.metrics.count_sent(type(message).__name__)
        self._connection.outbox.push(text_frame(encode(message)))

    def _note_rate_limited(self) -> None:
        now = time.monotonic()
        self._limited.append(now)
        if len(self._limited) > FLOOD_ERRORS:
            cutoff = now - FLOOD_WINDOW_S
            self._limited = [t for t in self._limited if t > cutoff]
            if len(self._limited) > FLOOD_ERRORS and not self.flooded:
                self.flooded = True
                self._server.close_connection(self._connection, 1008, "rate limit abuse")

