"""One connection's conversation with the server: decode, limit, dispatch, respond.

Every client message gets exactly one direct response carrying its `request_id`
(PROTOCOL.md §2). Each message is handled in its own task so that a connection's sends can
share a commit (group commit); tasks start in arrival order and reach the store in that
order; an invalid frame is answered before the next frame is read. Responses go through
the connection's Outbox like every other frame.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, assert_never

from hubbub.domain.clock import format_time
from hubbub.domain.errors import ChatError, Code, RateLimited
from hubbub.logs import get_logger
from hubbub.protocol import client as c
from hubbub.protocol.codec import DecodeError, decode_client_message, encode
from hubbub.protocol.server import (
    ActionConfirmed,
    Error,
    HistoryChunk,
    Pong,
    SearchResults,
    ServerMessage,
    SyncChunk,
)
from hubbub.services.context import Actor
from hubbub.services.views import conversation_object, message_object, summary_object
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
# Requests whose answer is all they do: when the connection is gone nobody reads it, so
# `close` cancels them instead of waiting (a search then stops its query at once).
_ABANDONABLE = (c.SearchMessages,)


class Session:
    """Handles the client messages of one connection.

    Most connections sit idle, so the containers and the Actor are made on first use (an
    empty set, a Semaphore and a list cost ~0.4 KiB per connection).
    """

    __slots__ = ("_abandonable", "_actor", "_connection", "_limited", "_server", "_slots",
                 "_tasks", "draining", "flooded")

    def __init__(self, server: Server, connection: Connection) -> None:
        self._server = server
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
            self._server.metrics.count_received(type(message).__name__)
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
        await self._server.typing.connection_closed(self._connection.id)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.typing.connection_closed(self._connection.id)

    def _done(self, task: asyncio.Task[None]) -> None:
        if self._tasks is not None:
            self._tasks.discard(task)
        if self._abandonable is not None:
            self._abandonable.discard(task)
        if self._slots is not None:
            self._slots.release()

    async def _run(self, message: c.AnyClientMessage | Error) -> None:
        request_id = message.request_id
        try:
            rule = (self._server.settings.send_rule if isinstance(message, _SEND_CLASS)
                    else self._server.settings.other_rule)
            await self._server.limiter.hit(
                ("s:" if isinstance(message, _SEND_CLASS) else "o:") + self._connection.user_id,
                rule
            )
            # An invalid frame took its token like any other action (§6): a sender of
            # garbage is answered RATE_LIMITED past its budget, and closed as a flooder.
            response = message if isinstance(message, Error) else await self._dispatch(message)
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

    async def _dispatch(self, message: c.AnyClientMessage) -> ServerMessage:
        """One case per client message type of PROTOCOL.md §3."""
        server, rid = self._server, message.request_id
        actor = self._actor
        if actor is None:
            actor = self._actor = Actor(self._connection.user_id, self._connection.user_name)
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
                                       message=outcome.view or message_object(outcome.message))
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
                # Confirmed means subscribed on the bus: events after it reach us.
                await server.hub.conversation_ready(conversation.id)
                summary = await server.conversations.summary(actor, conversation.id)
                view = (summary_object(summary) if summary is not None
                        else conversation_object(conversation, role))
                server.hub.joined_at(conversation.id, view.version)
                return ActionConfirmed(action=action, request_id=rid, role=role,
                                       conversation=view)
            case c.LeaveConversation():
                if message.conversation_id not in self._connection.conversations:
                    await server.conversations.require_exists(message.conversation_id)
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
            case c.SearchMessages():
                found = await server.search.search(
                    actor, message.query, message.conversation_id, message.limit
                )
                return SearchResults(query=message.query,
                                     conversation_id=message.conversation_id,
                                     messages=[message_object(m) for m in found.messages],
                                     truncated=found.truncated, request_id=rid)
            case c.SyncMessages():
                changes = await server.sync.sync(
                    actor, message.conversation_id, message.since_version, message.since,
                    message.limit,
                )
                return SyncChunk(conversation_id=message.conversation_id,
                                 messages=[message_object(m) for m in changes.messages],
                                 has_more=changes.has_more,
                                 last_version=changes.last_version, request_id=rid)
            case c.Typing():
                await server.typing.update(actor, self._connection.id,
                                           message.conversation_id, message.is_typing)
                return ActionConfirmed(action=action, request_id=rid)
            case c.MarkAsRead():
                await server.receipts.mark_read(actor, message.conversation_id,
                                                message.message_id)
                return ActionConfirmed(action=action, request_id=rid)
            case c.MarkAsDelivered():
                await server.receipts.mark_delivered(actor, message.conversation_id,
                                                     message.message_id)
                return ActionConfirmed(action=action, request_id=rid)
            case c.AddReaction():
                await server.reactions.add(actor, message.message_id, message.emoji)
                return ActionConfirmed(action=action, request_id=rid)
            case c.RemoveReaction():
                await server.reactions.remove(actor, message.message_id, message.emoji)
                return ActionConfirmed(action=action, request_id=rid)
            case c.CallOffer():
                await server.calls.offer(actor, self._connection.id, message.conversation_id,
                                         message.call_id, message.sdp, message.call_type,
                                         message.target_user_id)
                return ActionConfirmed(action=action, request_id=rid)
            case c.CallAnswer():
                await server.calls.answer(actor, self._connection.id, message.call_id,
                                          message.sdp)
                return ActionConfirmed(action=action, request_id=rid)
            case c.ICECandidate():
                await server.calls.candidate(actor, self._connection.id, message.call_id,
                                             message.candidate)
                return ActionConfirmed(action=action, request_id=rid)
            case c.CallHangup():
                await server.calls.hangup(actor, self._connection.id, message.call_id,
                                          message.reason)
                return ActionConfirmed(action=action, request_id=rid)
            case c.CallReject():
                await server.calls.reject(actor, self._connection.id, message.call_id,
                                          message.reason)
                return ActionConfirmed(action=action, request_id=rid)
            case _:
                assert_never(message)

    @property
    def connection(self) -> Connection:
        return self._connection

    def slow_consumer(self) -> None:
        """The outbox's overflow callback: close with 4008 (PROTOCOL.md §1)."""
        self._server.close_connection(self._connection, 4008, "slow consumer")

    def _reply(self, message: ServerMessage) -> None:
        if isinstance(message, Error):
            self._server.metrics.count_error(message.code)
        self._server.metrics.count_sent(type(message).__name__)
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
                self._server.close_connection(self._connection, 1008, "rate limit abuse")

