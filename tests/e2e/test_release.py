"""A connection the server decided to drop is gone within ~2 s, whatever its peer does
(docs/DECISIONS.md "Closing handshake"): socket and buffers, the open-connection count,
presence and the user's connection-cap slot.

The server is a real `hubbub serve` process. The peer is a bare socket that upgrades, joins
a busy room and then neither reads nor answers anything, while it keeps TCP open: the
server's close frame sits behind megabytes it will never read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from hubbub.client import Socket
from hubbub.transport.server import CLOSE_TIMEOUT_S
from tests.conftest import Backend
from tests.support.client import ChatClient
from tests.support.flows import TIMEOUT
from tests.support.process import ServerProcess, for_backend
from tests.support.rawws import CLOSE, PONG, RawClient
from tests.support.server import User
from tests.support.waiting import until

pytestmark = pytest.mark.asyncio(loop_scope="session")

# The server gives a closing peer CLOSE_TIMEOUT_S; the rest is margin for a loaded machine.
RELEASED_WITHIN_S = CLOSE_TIMEOUT_S + 1.5
# The largest content a message may have (MAX_CONTENT_CHARS): a few hundred messages
# outgrow every buffer on the way to the peer (kernel and transport).
CONTENT = "x" * 4000
IN_FLIGHT = 8
# Enough traffic that the server's buffer for the peer is far past the transport's
# high-water mark, so that aiohttp's close waits for a drain that never comes.
BUSY_BYTES = 3 * 1024 * 1024 // 2


@dataclass
class Scene:
    """A server, a room its owner keeps busy, and a bystander who shares a quiet group with
    the peer about to misbehave (so presence changes of that peer reach it)."""

    process: ServerProcess
    room: str
    owner: User
    bystander: ChatClient
    stubborn: User
    quiet: str

    async def metric(self, name: str, **labels: str) -> float:
        return sum(sample.value for sample in await self.process.samples(name)
                   if all(sample.labels.get(k) == v for k, v in labels.items()))

    async def closes(self, code: int) -> float:
        return await self.metric("hubbub_connections_closed_total", code=str(code))

    async def stubborn_peer(self) -> RawClient:
        """The peer: upgraded and joined to the busy room, then it never reads again."""
        raw = await RawClient.connect(self.process.port, f"/ws?token={self.stubborn.token}",
                                      receive_buffer=4096)
        await raw.send_text(json.dumps({"type": "JoinConversation", "conversation_id": self.room,
                                        "request_id": "join"}))
        # Joining the quiet group accepts it (docs/DECISIONS.md, "Consent"): from then on
        # the bystander there sees the peer's presence.
        await raw.send_text(json.dumps({"type": "JoinConversation",
                                        "conversation_id": self.quiet, "request_id": "quiet"}))
        await self.bystander.expect("PresenceChanged", TIMEOUT, user_id=self.stubborn.id,
                                    status="online")
        return raw


@contextlib.asynccontextmanager
async def scene(backend: Backend, tmp_path: Path, **env: str) -> AsyncIterator[Scene]:
    process = for_backend(backend, tmp_path,
                          {f"HUBBUB_{key.upper()}": value for key, value in env.items()})
    await process.start()
    try:
        owner, stubborn, watcher = (process.user("owner"), process.user("stubborn"),
                                    process.user("watcher"))
        for user in (owner, stubborn, watcher):
            async with process.http(user) as http:
                assert (await http.get("/api/v1/users/me")).status_code == 200
        async with process.http(owner) as http:
            room = (await http.post("/api/v1/conversations", json={
                "kind": "channel", "name": "busy", "member_ids": [stubborn.id]})).json()["id"]
        async with process.http(watcher) as http:
            quiet = (await http.post("/api/v1/conversations", json={
                "kind": "group", "name": "quiet", "member_ids": [stubborn.id]})).json()["id"]
        bystander = await process.connect(watcher)
        reply = await bystander.request("JoinConversation", conversation_id=quiet,
                                        timeout=TIMEOUT)
        assert reply["type"] == "ActionConfirmed", reply
        yield Scene(process, room, owner, bystander, stubborn, quiet)
    finally:
        await process.close_clients()
        await process.stop()


class Busy:
    """The room's owner posting the largest messages into it, a few in flight, on a
    connection of its own that is not subscribed (it reads only its acknowledgements)."""

    def __init__(self, s: Scene) -> None:
        self.acked = 0
        self._url = f"{s.process.ws_url}?token={s.owner.token}"
        self._frame = json.dumps({"type": "SendMessage", "conversation_id": s.room,
                                  "content": CONTENT})
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Busy:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        async with aiohttp.ClientSession() as session:
            socket = await Socket.open(session, self._url, None)
            try:
                await socket.receive_text()  # Connected
                for _ in range(IN_FLIGHT):
                    await socket.send_text(self._frame)
                # each answer lets the next message go
                while (reply := await socket.receive_text()) is not None:
                    if '"ActionConfirmed"' in reply:
                        self.acked += 1
                    await socket.send_text(self._frame)
            finally:
                await socket.close()

    @property
    def bytes_sent(self) -> int:
        return self.acked * len(CONTENT)


async def decided(s: Scene, code: int) -> float:
    """Wait until the server has decided to close one connection with `code`; when."""
    async def seen() -> bool:
        return await s.closes(code) >= 1
    await until(seen, f"a close with {code}", within=60)
    return time.monotonic()


async def assert_released(s: Scene, raw: RawClient, since: float) -> None:
    """Within RELEASED_WITHIN_S of the decision: the socket, the count, presence and the
    cap slot are all free again, though the peer still holds its end open."""
    deadline = since + RELEASED_WITHIN_S

    def left() -> float:
        return max(0.1, deadline - time.monotonic())

    async def only_the_others_open() -> bool:
        return await s.metric("hubbub_connections_open") == 2  # the owner and the bystander
    await until(only_the_others_open, "the connection no longer counted open", within=left())
    offline = await s.bystander.expect("PresenceChanged", left(), user_id=s.stubborn.id,
                                       status="offline")
    assert offline["last_seen"] is not None
    # The rest goes when the close is decided; the socket, at CLOSE_TIMEOUT_S at the latest.
    port = raw.sock.getsockname()[1]
    await until(lambda: not s.process.holds_connection_from(port), "the socket released",
                within=left())
    # HUBBUB_MAX_CONNECTIONS_PER_USER=1: this handshake gets the slot the dropped one held.
    again = await asyncio.wait_for(s.process.connect(s.stubborn), left())
    assert again.connected["user_id"] == s.stubborn.id
    elapsed = time.monotonic() - since
    print(f"\nreleased {elapsed:.2f} s after the decision")
    assert elapsed < RELEASED_WITHIN_S, elapsed


async def sigterm(process: ServerProcess, within: float) -> tuple[float, int | None]:
    """SIGTERM; seconds until the process is gone, and its exit status (the process is
    killed, failing the test, if it is still there after `within` seconds)."""
    child = process.process
    assert child is not None
    started = time.monotonic()
    child.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(child.wait(), within)
    except TimeoutError:
        child.kill()
        await child.wait()
        raise AssertionError(f"still running {within} s after SIGTERM") from None
    finally:
        process.process = None
    return time.monotonic() - started, child.returncode


async def test_a_slow_consumer_that_keeps_tcp_open_is_released(
        backend: Backend, tmp_path: Path) -> None:
    """4008: the peer that stopped reading is gone ~2 s after the decision, and SIGTERM
    then exits promptly (nothing is left for it to wait for)."""
    async with scene(backend, tmp_path, max_connections_per_user="1",
                     max_pending_bytes=str(1024 * 1024), shutdown_grace="10") as s:
        async with await s.stubborn_peer() as raw:
            async with Busy(s):
                since = await decided(s, 4008)
                await assert_released(s, raw, since)
            elapsed, status = await sigterm(s.process, within=20)
        assert status == 0
        assert elapsed < 3.0, elapsed


async def test_a_silent_peer_given_up_by_the_heartbeat_is_released(
        backend: Backend, tmp_path: Path) -> None:
    """1011: a peer that answers no ping and reads nothing is gone ~2 s after the heartbeat
    gives up on it, even with megabytes queued for it."""
    async with scene(backend, tmp_path, max_connections_per_user="1",
                     max_pending_bytes=str(256 * 1024 * 1024),
                     heartbeat_interval="0.5", heartbeat_timeout="1.5") as s:
        raw = await s.stubborn_peer()
        async with raw, Busy(s) as busy:
            while busy.bytes_sent < BUSY_BYTES:  # alive (it sends) until the room is busy
                await raw.send_frame(PONG, b"")
                await asyncio.sleep(0.2)
            since = await decided(s, 1011)  # then silent
            await assert_released(s, raw, since)


async def test_shutdown_cuts_off_a_peer_that_ignores_the_close(
        backend: Backend, tmp_path: Path) -> None:
    """1001: at SIGTERM a peer with megabytes unread and no answer to the close handshake is
    cut off after the close timeout, not at the end of the grace period."""
    grace = 10.0
    async with scene(backend, tmp_path, max_pending_bytes=str(256 * 1024 * 1024),
                     shutdown_grace=str(grace)) as s:
        async with await s.stubborn_peer():
            async with Busy(s) as busy:
                await until(lambda: busy.bytes_sent > BUSY_BYTES, "the room busy", within=60)
            elapsed, status = await sigterm(s.process, within=grace + 10)
        print(f"\nSIGTERM → exit {elapsed:.2f} s (grace {grace} s)")
        assert status == 0
        assert elapsed < CLOSE_TIMEOUT_S + 2.0, elapsed
        assert await s.bystander.wait_closed(TIMEOUT) == 1001


async def test_a_peer_that_closes_and_stops_reading_is_released(
        backend: Backend, tmp_path: Path) -> None:
    """A peer that sends its close frame and then reads nothing more, megabytes behind,
    does not keep its socket either: it is gone ~2 s after the connection ended."""
    async with scene(backend, tmp_path, max_pending_bytes=str(256 * 1024 * 1024)) as s:
        raw = await s.stubborn_peer()
        async with raw:
            async with Busy(s) as busy:
                await until(lambda: busy.bytes_sent > BUSY_BYTES, "the room busy", within=60)
                await raw.send_frame(CLOSE, struct.pack("!H", 1000))
                await s.bystander.expect("PresenceChanged", TIMEOUT, user_id=s.stubborn.id,
                                         status="offline")
                ended = time.monotonic()
            port = raw.sock.getsockname()[1]
            await until(lambda: not s.process.holds_connection_from(port),
                        "the socket released", within=RELEASED_WITHIN_S)
            print(f"\nsocket released {time.monotonic() - ended:.2f} s after the close")
