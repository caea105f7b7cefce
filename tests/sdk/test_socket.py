"""The SDK's one connection (hubbub.client.socket) against a real server: the wire form in
and out (`receive_text`, `send_text`, `send_binary`), credentials in the URL, and a
refused handshake's status and `Retry-After` (`HandshakeFailed`), which `Client` waits out
before its next attempt."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
import uuid

import aiohttp
import msgspec
import pytest
from aiohttp import web

from hubbub.client import Backoff, Client, HandshakeFailed, Socket
from hubbub.client.socket import decode
from hubbub.protocol.codes import Code
from hubbub.protocol.server import Connected, Error, Pong
from tests.conftest import StartServer
from tests.sdk.support import WITHIN
from tests.support.server import RunningServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

PING = b'{"type":"Ping","request_id":"%s","timestamp":"t"}'
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3


def one_handshake_per(seconds: int) -> dict[str, object]:
    """Settings that let one upgrade per client IP through and refuse the next with 429,
    on a Redis key prefix of their own (the buckets of 127.0.0.1 are shared by every
    server on one Redis)."""
    return {"handshake_rate": 1 / seconds, "handshake_burst": 1,
            "redis_prefix": f"socket-{uuid.uuid4().hex[:12]}"}


async def test_frames_go_out_and_come_in_as_the_wire_has_them(server: RunningServer) -> None:
    """`receive_text` is the JSON the server sent; `send_text` sends bytes as a text frame
    unchanged; a binary frame is refused with BAD_REQUEST (§1); after the close sends
    report False and reads None."""
    user = server.user()
    async with aiohttp.ClientSession() as session:
        socket = await Socket.open(session, server.ws_url, user.token)
        text = await asyncio.wait_for(socket.receive_text(), WITHIN)
        assert text is not None
        assert msgspec.json.decode(text)["user_id"] == user.id
        connected = decode(text)
        assert isinstance(connected, Connected)
        assert connected.user_id == user.id
        assert socket.local_address is not None
        assert socket.local_address[0] == "127.0.0.1"

        assert await socket.send_text(PING % b"as-bytes")
        pong = await asyncio.wait_for(socket.receive(), WITHIN)
        assert isinstance(pong, Pong)
        assert (pong.request_id, pong.timestamp) == ("as-bytes", "t")

        assert await socket.send_binary(PING % b"binary")
        refused = await asyncio.wait_for(socket.receive(), WITHIN)
        assert isinstance(refused, Error)
        assert refused.code == Code.BAD_REQUEST

        await socket.close()
        assert socket.close_code == 1000
        assert not await socket.send_text(PING % b"late")
        assert not await socket.send_binary(b"late")
        assert await socket.receive_text() is None


async def test_a_url_may_carry_the_credentials(server: RunningServer) -> None:
    """With no token, the URL's own `?token=` authenticates (the browser's way, §1)."""
    user = server.user()
    async with aiohttp.ClientSession() as session:
        socket = await Socket.open(session, f"{server.ws_url}?token={user.token}", None)
        first = await asyncio.wait_for(socket.receive(), WITHIN)
        await socket.close()
    assert isinstance(first, Connected)
    assert first.user_id == user.id


async def test_decode_refuses_what_is_no_message_of_the_protocol() -> None:
    """`decode` is strict (`receive` logs and skips what it refuses)."""
    with pytest.raises(msgspec.ValidationError):
        decode('{"type": "NoSuchMessage"}')
    with pytest.raises(msgspec.ValidationError):
        decode('{"type": "Pong", "request_id": 7}')
    with pytest.raises(msgspec.DecodeError):
        decode("not json")
    assert decode(b'{"type": "Pong", "timestamp": 1, "server_time": "2026-01-01T00:00:00Z"}'
                  ) == Pong(timestamp=1, server_time="2026-01-01T00:00:00Z")


async def test_a_handshake_over_the_rate_is_refused_with_its_status_and_retry_after(
        start_server: StartServer) -> None:
    """A 429 at the upgrade is `HandshakeFailed` carrying the status and `Retry-After`."""
    async with start_server(**one_handshake_per(3)) as server, \
            aiohttp.ClientSession() as session:
        first = await Socket.open(session, server.ws_url, server.user().token)
        with pytest.raises(HandshakeFailed) as refused:
            await Socket.open(session, server.ws_url, server.user().token)
        await first.close()
    assert refused.value.status == 429
    assert refused.value.retry_after_s is not None
    assert 1 <= refused.value.retry_after_s <= 3


async def test_the_client_waits_out_retry_after_before_trying_again(
        start_server: StartServer, caplog: pytest.LogCaptureFixture) -> None:
    """Refused with 429 and `Retry-After: 2`, a client with a 50 ms backoff tries again once,
    about 2 s later, and connects (without the wait it would have retried every few ms)."""
    caplog.set_level(logging.INFO, logger="hubbub.client")
    async with start_server(**one_handshake_per(2)) as server:
        async with aiohttp.ClientSession() as session:
            taken = await Socket.open(session, server.ws_url, server.user().token)
            await taken.close()
        user = server.user()
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with Client(server.ws_url, user.token,
                          backoff=Backoff(initial=0.05, maximum=5.0)) as client:
            connected = await asyncio.wait_for(anext(client.events()), WITHIN)
        took = loop.time() - started
    assert isinstance(connected, Connected)
    assert connected.user_id == user.id
    refusals = [r for r in caplog.records if "handshake answered 429" in r.getMessage()]
    assert len(refusals) == 1, [r.getMessage() for r in refusals]
    assert took >= 1.5


@pytest.mark.parametrize(("status", "retry_after", "seconds"), [
    (503, "7", 7.0), (503, "Wed, 21 Oct 2015 07:28:00 GMT", None), (502, None, None),
    (429, "-1", None)])
async def test_a_retry_after_counts_only_as_a_number_of_seconds(
        status: int, retry_after: str | None, seconds: float | None) -> None:
    """A proxy's refusal: `retry_after_s` is the header's seconds, None for an HTTP date, a
    negative number or no header (never honoured blindly)."""
    async def refuse(request: web.Request) -> web.Response:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return web.Response(status=status, headers=headers)

    app = web.Application()
    app.router.add_get("/ws", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(HandshakeFailed) as refused:
                await Socket.open(session, f"ws://127.0.0.1:{runner.addresses[0][1]}/ws", "t")
    finally:
        await runner.cleanup()
    assert (refused.value.status, refused.value.retry_after_s) == (status, seconds)


async def test_the_servers_close_code_survives_a_dropped_connection() -> None:
    """A server (or a proxy) that sends `1001` and drops the TCP connection at once: the
    close code is 1001, not the 1006 aiohttp reports when it cannot answer the close."""
    async def upgrade_then_drop(reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        found = re.search(rb"(?i)sec-websocket-key: *(\S+)", head)
        assert found is not None
        accept = base64.b64encode(hashlib.sha1(found.group(1) + WS_GUID).digest())
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        writer.write(b"\x88\x02" + (1001).to_bytes(2, "big"))  # a close frame, 1001
        await writer.drain()
        writer.transport.abort()

    server = await asyncio.start_server(upgrade_then_drop, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, aiohttp.ClientSession() as session:
        socket = await Socket.open(session, f"ws://127.0.0.1:{port}/ws", None)
        assert await asyncio.wait_for(socket.receive_text(), WITHIN) is None
    assert socket.close_code == 1001
