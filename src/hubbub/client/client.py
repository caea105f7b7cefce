"""`hubbub.client.Client`: the Python SDK's one entry point.

    async with Client("ws://127.0.0.1:8080/ws", token) as chat:
        room = await chat.join(conversation_id)
        message = await chat.send(room.id, "hello")     # the stored MessageObject
        async for event in chat.events():               # typed hubbub.protocol Structs
            ...

Requests resolve to their typed answer or raise `RequestError` carrying the wire code;
each resolves exactly once, across reconnects (outbox.py). The change events of joined
conversations arrive exactly once and in `version` order, including after reconnects and
gaps (feed.py); after each reconnect the client joins its conversations again and syncs
each from the last version the application saw.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import TypeVar

import aiohttp

from hubbub.client.backoff import Backoff
from hubbub.client.errors import ClientClosed, RequestError
from hubbub.client.feed import Feed, position
from hubbub.client.link import Link, Source, Urls
from hubbub.client.outbox import ConnectionLost
from hubbub.protocol import client as wire
from hubbub.protocol.codes import Code
from hubbub.protocol.objects import Attachment, ConversationObject, MessageObject
from hubbub.protocol.server import (
    ActionConfirmed,
    AnyServerMessage,
    CallAnswer,
    CallHangup,
    CallOffer,
    CallReject,
    Connected,
    Error,
    HistoryChunk,
    ICECandidate,
    MessageDeleted,
    MessageDelivered,
    MessageEdited,
    MessageRead,
    NewMessage,
    Pong,
    PresenceChanged,
    ReactionAdded,
    ReactionRemoved,
    SearchResults,
    SyncChunk,
    UserJoined,
    UserTyping,
)

log = logging.getLogger("hubbub.client")

Event = (Connected | NewMessage | MessageEdited | MessageDeleted | ReactionAdded
         | ReactionRemoved | UserTyping | MessageRead | MessageDelivered | UserJoined
         | PresenceChanged | CallOffer | CallAnswer | ICECandidate | CallHangup | CallReject
         | Error)
"""What `events()` yields: `Connected` on each (re)connect, the broadcasts of §3, and an
`Error` the server sent without a request_id."""

EventHandler = Callable[[Event], Awaitable[None] | None]
A = TypeVar("A", bound=AnyServerMessage)
CLOSE_TIMEOUT_S = 5.0
CHANGES = (NewMessage, MessageEdited, MessageDeleted, ReactionAdded, ReactionRemoved)


class Client:
    """A hubbub connection that survives losses; see the module docstring.

    Args:
        url: a WebSocket URL (`ws://host/ws`), a list tried in turn on each reconnect, or a
            callable returning one (sync or async).
        token: a JWT, or a callable returning one (sync or async), called before every
            connect: the refresh hook, also run after a `4001` close for an expired token.
        use_ticket: buy a single-use ticket (`POST /api/v1/ws-tickets`) with the token and
            connect with `?ticket=`, so the JWT is never in a URL (PROTOCOL.md §1).
        on_event: called for each event instead of queueing it for `events()`.
    """

    def __init__(self, url: Urls, token: Source, *, use_ticket: bool = False,
                 backoff: Backoff | None = None, heartbeat: float | None = 20.0,
                 session: aiohttp.ClientSession | None = None,
                 on_event: EventHandler | None = None) -> None:
        self._feed = Feed()
        self._joined: dict[str, None] = {}  # ordered: re-joined in the order joined
        self._syncs: dict[str, asyncio.Task[None]] = {}
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._on_event = on_event
        self._tasks: list[asyncio.Task[None]] = []
        self._first: asyncio.Future[Connected] | None = None
        self.connected: Connected | None = None
        self._link = Link(url, token, use_ticket=use_ticket, backoff=backoff or Backoff(),
                          heartbeat=heartbeat, session=session,
                          on_connected=self._connected, on_message=self._message,
                          on_lost=self._lost)

    # Lifecycle

    async def start(self) -> Connected:
        """Connect (retrying with backoff) and return the first `Connected`.

        Raises:
            AuthenticationError: the server refused the token.
        """
        loop = asyncio.get_running_loop()
        self._first = loop.create_future()
        self._tasks.append(loop.create_task(self._run()))
        if self._on_event is not None:
            self._tasks.append(loop.create_task(self._pump(self._on_event)))
        return await self._first

    async def close(self) -> None:
        """Close the connection; pending requests fail with `ClientClosed`."""
        await self._link.close()
        syncs = list(self._syncs.values())
        for task in syncs:
            task.cancel()
        if self._tasks:
            # The link ends by itself once closed; only a connect attempt that hangs is cut.
            _, hanging = await asyncio.wait(self._tasks[:1], timeout=CLOSE_TIMEOUT_S)
            for task in [*hanging, *self._tasks[1:]]:
                task.cancel()
        await asyncio.gather(*self._tasks, *syncs, return_exceptions=True)

    async def __aenter__(self) -> Client:
        await self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, value: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.close()

    @property
    def connections(self) -> int:
        """How many connections reached `Connected` so far (1 + reconnects)."""
        return self._link.connections

    @property
    def user_id(self) -> str:
        assert self.connected is not None, "start() first"
        return self.connected.user_id

    async def events(self) -> AsyncIterator[Event]:
        """The events, in order, until the client is closed. One consumer: two iterators
        would split the events between them. Unread events wait in memory."""
        while (event := await self._queue.get()) is not None:
            yield event

    # Requests (PROTOCOL.md §3)

    async def send(self, conversation_id: str, content: str = "", *,
                   parent_id: str | None = None, attachments: list[Attachment] | None = None,
                   client_message_id: str | None = None) -> MessageObject:
        """Send a message; returns it as stored. Retried (same `client_message_id`, made
        here when not given) after a lost connection or `RATE_LIMITED`: stored once."""
        message = wire.SendMessage(
            conversation_id=conversation_id, content=content, parent_id=parent_id,
            attachments=attachments or [],
            client_message_id=client_message_id or f"py-{uuid.uuid4()}")
        return _message(await self._expect(message, ActionConfirmed))

    async def edit(self, message_id: str, content: str) -> MessageObject:
        message = wire.EditMessage(message_id=message_id, content=content)
        return _message(await self._expect(message, ActionConfirmed))

    async def delete(self, message_id: str) -> None:
        await self._expect(wire.DeleteMessage(message_id=message_id), ActionConfirmed)

    async def react(self, message_id: str, emoji: str, *, remove: bool = False) -> None:
        """Add (or, with `remove`, take back) a reaction."""
        request: wire.ClientMessage = (
            wire.RemoveReaction(message_id=message_id, emoji=emoji) if remove
            else wire.AddReaction(message_id=message_id, emoji=emoji))
        await self._expect(request, ActionConfirmed)

    async def typing(self, conversation_id: str, is_typing: bool = True) -> None:
        await self._expect(wire.Typing(conversation_id=conversation_id, is_typing=is_typing),
                           ActionConfirmed)

    async def mark_read(self, conversation_id: str, message_id: str) -> None:
        await self._expect(wire.MarkAsRead(conversation_id=conversation_id,
                                           message_id=message_id), ActionConfirmed)

    async def mark_delivered(self, conversation_id: str, message_id: str) -> None:
        await self._expect(wire.MarkAsDelivered(conversation_id=conversation_id,
                                                message_id=message_id), ActionConfirmed)

    async def history(self, conversation_id: str, *, before: int | None = None,
                      limit: int = 50) -> HistoryChunk:
        return await self._expect(wire.FetchHistory(
            conversation_id=conversation_id, before=before, limit=limit), HistoryChunk)

    async def sync(self, conversation_id: str, since_version: int, *,
                   limit: int = 100) -> SyncChunk:
        """One `SyncMessages` page, as is (the client already syncs joined conversations
        by itself; this is for reading changes of others)."""
        return await self._expect(wire.SyncMessages(
            conversation_id=conversation_id, since_version=since_version, limit=limit),
            SyncChunk)

    async def search(self, query: str, *, conversation_id: str | None = None,
                     limit: int = 50, cursor: str | None = None) -> SearchResults:
        return await self._expect(wire.SearchMessages(
            query=query, conversation_id=conversation_id, limit=limit, cursor=cursor),
            SearchResults)

    async def ping(self) -> Pong:
        return await self._expect(wire.Ping(), Pong)

    async def join(self, conversation_id: str, *,
                   since_version: int | None = None) -> ConversationObject:
        """Subscribe to a conversation (a channel's non-member becomes a member). Its
        change events are delivered from `since_version` on (synced first), by default
        from the conversation's version at the join; joined again on every reconnect."""
        new = conversation_id not in self._joined
        self._joined[conversation_id] = None
        self._feed.track(conversation_id)
        try:
            confirmed = await self._expect(
                wire.JoinConversation(conversation_id=conversation_id), ActionConfirmed)
        except BaseException:
            if new:
                self._forget(conversation_id)
            raise
        conversation = confirmed.conversation
        assert isinstance(conversation, ConversationObject)
        start = conversation.version if since_version is None else since_version
        self._feed.set_start(conversation_id, start)
        self._start_sync(conversation_id, rejoin=False)
        return conversation

    async def leave(self, conversation_id: str) -> None:
        """Unsubscribe this connection (membership stays; PROTOCOL.md §3)."""
        self._forget(conversation_id)
        await self._expect(wire.LeaveConversation(conversation_id=conversation_id),
                           ActionConfirmed)

    async def _expect(self, message: wire.ClientMessage, kind: type[A], *,
                      bound: bool = False) -> A:
        answer = await self._link.request(message, bound=bound)
        if isinstance(answer, Error):
            raise RequestError.of(answer)
        if not isinstance(answer, kind):
            raise RequestError(Code.INTERNAL_ERROR, f"unexpected answer {type(answer).__name__}")
        return answer

    # The link's callbacks (no await: each runs between two frames)

    def _connected(self, connected: Connected) -> None:
        self.connected = connected
        if self._first is not None and not self._first.done():
            self._first.set_result(connected)
        self._emit([connected])
        for conversation_id in self._joined:
            self._start_sync(conversation_id, rejoin=True)

    def _lost(self, close_code: int | None) -> None:
        log.info("hubbub connection closed (code %s); reconnecting", close_code)
        for task in self._syncs.values():
            task.cancel()
        self._syncs.clear()

    def _message(self, message: AnyServerMessage) -> None:
        if isinstance(message, CHANGES):
            ready, gap = self._feed.live(message)
            self._emit(ready)
            if gap:
                self._start_sync(position(message)[0], rejoin=False)
        elif isinstance(message, Event):
            self._emit([message])

    # Sync (feed.py holds the rules)

    def _start_sync(self, conversation_id: str, *, rejoin: bool) -> None:
        running = self._syncs.get(conversation_id)
        if running is not None and not running.done():
            return
        self._feed.track(conversation_id)
        self._feed.hold(conversation_id)
        self._syncs[conversation_id] = asyncio.get_running_loop().create_task(
            self._sync(conversation_id, rejoin))

    async def _sync(self, conversation_id: str, rejoin: bool) -> None:
        try:
            if rejoin:
                confirmed = await self._expect(
                    wire.JoinConversation(conversation_id=conversation_id), ActionConfirmed,
                    bound=True)
                assert isinstance(confirmed.conversation, ConversationObject)
                self._feed.set_start(conversation_id, confirmed.conversation.version)
            while await self._sync_once(conversation_id):
                pass
        except ConnectionLost:
            pass  # the next connection syncs again
        except RequestError as exc:  # e.g. removed or banned meanwhile
            log.warning("cannot follow conversation %s any more: %s", conversation_id,
                        exc.code)
            self._forget(conversation_id)

    async def _sync_once(self, conversation_id: str) -> bool:
        """Sync from the last version delivered; whether a gap remains after it."""
        since = self._feed.begin_sync(conversation_id)
        while True:
            chunk = await self._expect(wire.SyncMessages(
                conversation_id=conversation_id, since_version=since, limit=500),
                SyncChunk, bound=True)
            self._emit(self._feed.synced(chunk))
            if not chunk.has_more:
                break
            since = chunk.last_version
        ready, gap = self._feed.end_sync(conversation_id)
        self._emit(ready)
        return gap

    def _forget(self, conversation_id: str) -> None:
        self._joined.pop(conversation_id, None)
        self._feed.forget(conversation_id)
        task = self._syncs.pop(conversation_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _emit(self, events: Sequence[Event]) -> None:
        for event in events:
            self._queue.put_nowait(event)

    async def _run(self) -> None:
        try:
            await self._link.run()
        finally:
            if self._first is not None and not self._first.done():
                self._first.set_exception(self._link.failure or ClientClosed())
            self._queue.put_nowait(None)

    async def _pump(self, handler: EventHandler) -> None:
        async for event in self.events():
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("the event handler failed on a %s", type(event).__name__)


def _message(confirmed: ActionConfirmed) -> MessageObject:
    message = confirmed.message
    assert isinstance(message, MessageObject)
    return message
