"""A test chat client on the SDK's connection (hubbub.client.socket), keeping dict frames.

It reads in the background and keeps every frame, so a test can ask for the direct response
to a request (`request`), the next broadcast of a type (`expect`), or assert that nothing of
a type arrives (`expect_none`). Tests assert on the JSON as sent (`frames` are dicts), and
every frame is also decoded into the SDK's typed messages: one the SDK cannot read fails
the test that received it (the next wait, or the client's close at teardown), so the whole
suite checks that the server and the SDK agree on §4. (tests/support/rawws.py is the
WebSocket client of no library, for framing.)

It connects with `?token=` (the browser's way, §1, so that the suite covers it and its
redaction from logs); `open` takes any URL that carries its credentials (a `?ticket=`).

`expect_none` does not sleep: it proves that nothing is still on its way with a barrier, a
frame the server sends after anything it would have sent before. A `Ping`'s `Pong` comes
after every frame already queued for the connection. For a server in this process
(`server_side`), the barrier first waits until the server is idle (no request or closing
connection in hand, no background task), then sends a frame through the server's bus,
which comes after every event the server published before it, on the memory bus and on
Redis alike (one publisher, one subscriber, both in order). Barrier frames are removed
from `frames`, so what a test inspects is what the server sent on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import ssl as tls
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import aiohttp
import msgspec

from hubbub.client import AuthenticationError, HandshakeFailed
from hubbub.client.socket import Socket, decode

DEFAULT_TIMEOUT = 10.0
_ids = itertools.count(1)


class ServerSide(Protocol):
    """What a barrier needs of a server running in this process (tests/support/server.py)."""

    async def idle(self) -> None:
        """Return once the server handles nothing but its open connections' reads."""

    def publish_pong(self, user_id: str, connection_id: str, timestamp: str) -> None:
        """Publish a `Pong` to one connection of a user through the server's bus."""


class ChatClient:
    def __init__(self, socket: Socket, session: aiohttp.ClientSession,
                 connected: dict[str, Any]) -> None:
        self.socket = socket
        self._session = session
        self.connected = connected
        self.user_id: str = connected["user_id"]
        self.frames: list[dict[str, Any]] = []
        # Frames the SDK could not decode, each with why: any fails the test.
        self.unreadable: list[str] = []
        self._arrived = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read())
        self.close_code: int | None = None
        # Set by the in-process server; None for a server in another process, whose events
        # may come from another instance: there `expect_none` keeps its grace period.
        self.server_side: ServerSide | None = None

    @classmethod
    async def connect(cls, ws_url: str, token: str, **options: Any) -> ChatClient:
        """Connect with `?token=`; `options` are those of `open`."""
        return await cls.open(f"{ws_url}?token={token}", **options)

    @classmethod
    async def open(cls, url: str, *, headers: Mapping[str, str] | None = None,
                   origin: str | None = None, ssl: tls.SSLContext | None = None,
                   local_addr: tuple[str, int] | None = None,
                   open_timeout: float = DEFAULT_TIMEOUT) -> ChatClient:
        """Open `url` (carrying its credentials) and wait for `Connected`.

        Raises what `Socket.open` raises: AuthenticationError (401/403), HandshakeFailed
        (another status, e.g. 429), Unreachable.
        """
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ssl=ssl if ssl is not None else True,
                                           local_addr=local_addr), trust_env=False)
        sent = {**(headers or {}), **({"Origin": origin} if origin else {})}
        try:
            socket = await asyncio.wait_for(Socket.open(session, url, None, headers=sent),
                                            open_timeout)
            text = await asyncio.wait_for(socket.receive_text(), DEFAULT_TIMEOUT)
            assert text is not None, f"closed ({socket.close_code}) before Connected"
            first = json.loads(text)
            assert first["type"] == "Connected", first
            decode(text)
        except BaseException:
            await session.close()
            raise
        return cls(socket, session, first)

    async def _read(self) -> None:
        try:
            while (text := await self.socket.receive_text()) is not None:
                try:
                    decode(text)
                except msgspec.DecodeError as exc:
                    self.unreadable.append(f"{exc}: {text[:500]}")
                self.frames.append(json.loads(text))
                self._arrived.set()
        finally:
            self.close_code = self.socket.close_code
            self._arrived.set()

    def _assert_readable(self) -> None:
        """Fail on any frame so far that the SDK's typed decoder refused."""
        assert not self.unreadable, f"frames the SDK cannot read: {self.unreadable}"

    @property
    def closed(self) -> bool:
        """Whether the connection has ended (every frame it carried is in `frames`)."""
        return self._reader.done()

    async def send_raw(self, data: str | bytes) -> None:
        """Send a text frame (str) or a binary one (bytes) as it is, malformed or not."""
        sent = await (self.socket.send_text(data) if isinstance(data, str)
                      else self.socket.send_binary(data))
        assert sent, f"the connection is closed ({self.close_code})"

    async def send(self, type_: str, **fields: Any) -> str:
        """Send a message with a fresh request_id (unless given); returns the request_id."""
        fields.setdefault("request_id", f"r{next(_ids)}")
        await self.send_raw(json.dumps({"type": type_, **fields}))
        return str(fields["request_id"])

    async def request(self, type_: str, timeout: float = DEFAULT_TIMEOUT,
                      **fields: Any) -> dict[str, Any]:
        """Send and wait for the direct response (the frame carrying our request_id)."""
        request_id = await self.send(type_, **fields)
        return await self.response(request_id, timeout)

    async def response(self, request_id: str, timeout: float = DEFAULT_TIMEOUT
                       ) -> dict[str, Any]:
        return await self._wait(lambda f: f.get("request_id") == request_id, timeout,
                                f"response to {request_id}")

    async def expect(self, type_: str, timeout: float = DEFAULT_TIMEOUT,
                     **match: Any) -> dict[str, Any]:
        """The next not-yet-consumed frame of `type_` whose fields equal `match`."""
        def wanted(frame: dict[str, Any]) -> bool:
            return frame["type"] == type_ and all(frame.get(k) == v for k, v in match.items())
        return await self._wait(wanted, timeout, f"{type_} {match}")

    async def expect_none(self, type_: str, within: float = 0.3, *, hold: float = 0.0,
                          **match: Any) -> None:
        """Assert that no frame of `type_` (matching `match`) is on its way.

        `within` > 0: first wait for the barrier (the module docstring), so that anything
        the server sent before it has arrived; without a bus barrier (a server in another
        process) wait `within` s first, as long as an event from another instance may take.
        `within` = 0: only the frames received so far. `hold`: seconds that must pass first
        (a timer that must not fire).
        """
        if hold:
            await asyncio.sleep(hold)
        if within > 0:
            if self.server_side is None:
                await asyncio.sleep(within)
            await self.settle()
        self._assert_readable()
        found = [f for f in self.frames if f["type"] == type_
                 and all(f.get(k) == v for k, v in match.items()) and not f.get("_seen")]
        assert not found, f"unexpected {type_}: {found}"

    async def settle(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Return once every frame the server had sent or set out to send this connection
        has arrived: a `Pong`; then, for a server in this process, once it is idle, a frame
        through its bus and a `Pong` again (for what the bus delivery set off)."""
        await self._barrier(self._ping, timeout)
        side = self.server_side
        if side is None:
            return
        await asyncio.wait_for(side.idle(), timeout)
        connection_id = self.connected["connection_id"]

        async def through_bus(nonce: str) -> None:
            side.publish_pong(self.user_id, connection_id, nonce)

        await self._barrier(through_bus, timeout)
        await self._barrier(self._ping, timeout)

    async def _ping(self, nonce: str) -> None:
        await self.send("Ping", timestamp=nonce)

    async def _barrier(self, start: Callable[[str], Awaitable[object]], timeout: float) -> None:
        """Start one barrier frame (a `Pong` carrying a fresh timestamp), wait for it, and
        remove it from `frames`."""
        nonce = f"barrier-{next(_ids)}"
        await start(nonce)
        frame = await self._wait(
            lambda f: f["type"] == "Pong" and f.get("timestamp") == nonce, timeout,
            f"the barrier {nonce}")
        self.frames[:] = [f for f in self.frames
                          if not (f["type"] == "Pong" and f.get("timestamp") == nonce)]
        assert frame["timestamp"] == nonce

    def all(self, type_: str) -> list[dict[str, Any]]:
        """Every frame of a type received so far."""
        self._assert_readable()
        return [f for f in self.frames if f["type"] == type_]

    async def wait_closed(self, timeout: float | None = DEFAULT_TIMEOUT) -> int | None:
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.close_code

    async def close(self) -> None:
        """Close (at a test's end too), then fail if any frame was one the SDK cannot read."""
        with contextlib.suppress(Exception):
            await self.socket.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        await self._session.close()
        self._assert_readable()

    async def _wait(self, predicate: Any, timeout: float, what: str) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._assert_readable()
            for frame in self.frames:
                if not frame.get("_seen") and predicate(frame):
                    frame["_seen"] = True
                    return {k: v for k, v in frame.items() if k != "_seen"}
            if self._reader.done():
                raise AssertionError(f"connection closed ({self.close_code}) waiting for {what}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {what}; got "
                                     f"{[f['type'] for f in self.frames]}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)


async def refused_status(url: str, headers: Mapping[str, str] | None = None) -> int:
    """The HTTP status with which an upgrade of `url` (carrying its credentials, if any) is
    refused; fails the test if it is upgraded."""
    try:
        client = await ChatClient.open(url, headers=headers)
    except (AuthenticationError, HandshakeFailed) as refused:
        return refused.status
    await client.close()
    raise AssertionError("the upgrade was not refused")
