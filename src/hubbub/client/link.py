"""The reconnecting connection: one WebSocket at a time, another after each loss.

Before each attempt it asks for the URL (a list is tried in turn, so a client whose
instance died lands on another) and the token (a refresh callback runs before every
connect, so a `4001` close for an expired token is followed by a fresh one). Between
attempts it waits a backoff with full jitter; a connection that reached `Connected` resets
the attempts. The outbox is flushed on each connection; answers are matched to their
requests here; every other server message goes to `on_message`.

A handshake refused with a `Retry-After` (a `429` over the handshake rate, §6) is tried
again no sooner than it says (at most the backoff's maximum).

Not retried: a handshake refused with 401/403 (the credentials will not get better by
themselves) stops the link and fails every pending request with `AuthenticationError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeAlias

import aiohttp

from hubbub.client.backoff import Backoff
from hubbub.client.errors import AuthenticationError, ClientClosed, HandshakeFailed, Unreachable
from hubbub.client.outbox import Outbox, Pending
from hubbub.client.socket import Socket
from hubbub.protocol.client import ClientMessage
from hubbub.protocol.codes import Code
from hubbub.protocol.server import (
    ActionConfirmed,
    AnyServerMessage,
    Connected,
    Error,
    HistoryChunk,
    Pong,
    SearchResults,
    SyncChunk,
)

log = logging.getLogger("hubbub.client")

Source: TypeAlias = str | Callable[[], str | Awaitable[str]]
Urls: TypeAlias = str | Sequence[str] | Callable[[], str | Awaitable[str]]
# A handshake (and ticket) slower than this is abandoned and tried again.
CONNECT_TIMEOUT_S = 15.0
Answer = ActionConfirmed | Error | HistoryChunk | SyncChunk | SearchResults | Pong


async def _resolve(source: Source) -> str:
    if isinstance(source, str):
        return source
    value = source()
    return await value if inspect.isawaitable(value) else value


class Link:
    """Keeps one connection open while running; `request` works across reconnects."""

    def __init__(self, urls: Urls, token: Source, *, use_ticket: bool, backoff: Backoff,
                 heartbeat: float | None, session: aiohttp.ClientSession | None,
                 on_connected: Callable[[Connected], None],
                 on_message: Callable[[AnyServerMessage], None],
                 on_lost: Callable[[int | None], None]) -> None:
        self._urls = urls
        self._next_url = 0
        self._token = token
        self._use_ticket = use_ticket
        self._backoff = backoff
        self._heartbeat = heartbeat
        self._session = session
        self._own_session = session is None
        self._on_connected, self._on_message, self._on_lost = on_connected, on_message, on_lost
        self.outbox = Outbox()
        self._socket: Socket | None = None
        self._closing = False
        self.failure: BaseException | None = None
        self.connections = 0  # how many connections reached `Connected`
        self._tasks: set[asyncio.Task[None]] = set()
        self._woken = asyncio.Event()

    async def request(self, message: ClientMessage, *, bound: bool = False
                      ) -> AnyServerMessage:
        """Send `message` (now, or once connected) and return its one direct answer.

        Raises:
            ConnectionLost: a `bound` request's connection dropped first.
            ClientClosed, AuthenticationError: the link stopped first.
        """
        if self.failure is not None:
            raise self.failure
        pending = self.outbox.add(message, bound=bound)
        if bound and self._socket is None:
            self.outbox.connection_lost()
        self._flush()
        try:
            return await asyncio.shield(pending.future)
        except asyncio.CancelledError:
            self.outbox.discard(pending)
            raise

    async def run(self) -> None:
        """Connect, serve, reconnect, until `close` (or a refused handshake)."""
        owned = self._session = self._session or aiohttp.ClientSession()
        attempt, close_code = 0, None
        try:
            while not self._closing:
                at_least = 0.0  # a refused handshake's Retry-After
                try:
                    socket = await asyncio.wait_for(self._open(), CONNECT_TIMEOUT_S)
                except AuthenticationError as exc:
                    self._stop(exc)
                    return
                except (Unreachable, TimeoutError) as exc:
                    log.info("hubbub unreachable (%s); retrying", exc or "timed out")
                    if isinstance(exc, HandshakeFailed) and exc.retry_after_s is not None:
                        at_least = min(exc.retry_after_s, self._backoff.maximum)
                except Exception:  # the URL or token callback failed: try again later
                    log.exception("could not prepare a connection to hubbub; retrying")
                else:
                    if await self._serve(socket):
                        attempt = 0
                    close_code = socket.close_code
                if not self._closing:
                    with contextlib.suppress(TimeoutError):  # `close` cuts the wait short
                        await asyncio.wait_for(self._woken.wait(), max(
                            at_least, self._backoff.delay(attempt, close_code)))
                    attempt, close_code = attempt + 1, None
        finally:
            self._stop(ClientClosed("the client is closed"))
            if self._own_session:
                await owned.close()

    async def close(self) -> None:
        self._closing = True
        self._woken.set()
        if self._socket is not None:
            await self._socket.close()

    async def _open(self) -> Socket:
        url = await self._url()
        token = await _resolve(self._token)
        assert self._session is not None
        return await Socket.open(self._session, url, token, use_ticket=self._use_ticket,
                                 heartbeat=self._heartbeat)

    async def _url(self) -> str:
        if isinstance(self._urls, str):
            return self._urls
        if callable(self._urls):
            return await _resolve(self._urls)
        url = self._urls[self._next_url % len(self._urls)]
        self._next_url += 1
        return url

    async def _serve(self, socket: Socket) -> bool:
        """Serve one connection until it closes; whether it reached `Connected`."""
        first = await socket.receive()
        if not isinstance(first, Connected):
            await socket.close()
            return False
        self._socket = socket
        self.connections += 1
        try:
            self._on_connected(first)
            self._flush()
            while (message := await socket.receive()) is not None:
                self._dispatch(message)
        finally:
            self._socket = None
            self.outbox.connection_lost()
            self._on_lost(socket.close_code)
        return True

    def _dispatch(self, message: AnyServerMessage) -> None:
        if isinstance(message, Answer) and message.request_id is not None:
            pending = self.outbox.answered(message.request_id)
            if pending is not None:
                self._answer(pending, message)
                return
        if isinstance(message, Answer) and not isinstance(message, Error):
            return  # an answer to nobody (a request given up on): not an event
        self._on_message(message)

    def _answer(self, pending: Pending, message: AnyServerMessage) -> None:
        if isinstance(message, Error) and message.code == Code.RATE_LIMITED:
            # §6: nothing was stored; the same frame again after the wait is safe.
            self.outbox.hold(pending)
            wait_ms = message.retry_after_ms if isinstance(message.retry_after_ms, int) else 1000
            delay = wait_ms / 1000
            asyncio.get_running_loop().call_later(delay, self._release, pending)
            return
        if not pending.future.done():
            pending.future.set_result(message)

    def _release(self, pending: Pending) -> None:
        self.outbox.release(pending)
        self._flush()

    def _flush(self) -> None:
        """Put every request that waits on the open connection (in order, no await: a
        request made meanwhile cannot overtake one made before)."""
        socket = self._socket
        if socket is None:
            return
        for pending in self.outbox.to_send():
            pending.sent = True
            task = asyncio.get_running_loop().create_task(self._send(socket, pending))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, socket: Socket, pending: Pending) -> None:
        if not await socket.send(pending.message) and socket is self._socket:
            pending.sent = False  # the drop is noticed by the reader; resent next time

    def _stop(self, error: BaseException) -> None:
        if self.failure is None:
            self.failure = error
        self._closing = True
        self.outbox.fail_all(error)
