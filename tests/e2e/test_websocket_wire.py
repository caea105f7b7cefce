"""The WebSocket itself over a bare socket (PROTOCOL.md §1, RFC 6455): the handshake however
it arrives (in pieces, with frames behind it, after another request on the same connection,
in a shape left to aiohttp), the closing handshake, and broken framing, which closes with
its code and leaves the server and every other connection as they were."""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

import pytest

from tests.support.flows import TIMEOUT
from tests.support.rawws import (
    BINARY,
    CLOSE,
    PING,
    PONG,
    TEXT,
    Frame,
    RawClient,
    client_frame,
)
from tests.support.server import RunningServer, User

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def next_frame(raw: RawClient) -> Frame:
    """The next frame, past the heartbeat's pings (which may come at any time)."""
    frame = await raw.recv_frame(TIMEOUT)
    while frame is not None and frame.opcode == PING:
        frame = await raw.recv_frame(TIMEOUT)
    assert frame is not None, "the connection ended"
    return frame


async def next_json(raw: RawClient) -> dict[str, Any]:
    frame = await next_frame(raw)
    assert frame.opcode == TEXT, frame
    parsed: dict[str, Any] = json.loads(frame.payload)
    return parsed


def ping(request_id: str) -> bytes:
    return json.dumps({"type": "Ping", "request_id": request_id, "timestamp": "t"}).encode()


async def assert_served(raw: RawClient, user: User) -> None:
    """Greeted first, then answering requests."""
    connected = await next_json(raw)
    assert (connected["type"], connected["user_id"]) == ("Connected", user.id)
    await raw.send_frame(TEXT, ping("after"))
    pong = await next_json(raw)
    assert (pong["type"], pong["request_id"]) == ("Pong", "after")


async def assert_closed_with(raw: RawClient, code: int) -> None:
    frames = await raw.frames_until_close(TIMEOUT)
    assert frames, "no close frame"
    assert frames[-1].opcode == CLOSE
    assert frames[-1].close_code == code, frames[-1]
    assert await raw.at_eof(TIMEOUT)


async def test_a_handshake_arriving_in_pieces_is_upgraded(server: RunningServer) -> None:
    user = server.user("pieces")
    async with await RawClient.connect(server.port, f"/ws?token={user.token}", piece=7) as raw:
        await assert_served(raw, user)


async def test_frames_sent_behind_the_handshake_are_answered_after_the_greeting(
        server: RunningServer) -> None:
    """A client may write frames before the 101 arrives: none is lost, `Connected` first."""
    user = server.user("eager")
    frames = client_frame(TEXT, ping("1")) + client_frame(TEXT, ping("2"))
    async with await RawClient.connect(server.port, f"/ws?token={user.token}",
                                       after=frames) as raw:
        assert (await next_json(raw))["type"] == "Connected"
        assert [(await next_json(raw))["request_id"] for _ in range(2)] == ["1", "2"]


async def test_an_upgrade_after_a_request_on_the_same_connection_is_served(
        server: RunningServer) -> None:
    """A proxy may reuse a kept-alive connection for a handshake: aiohttp's route serves it."""
    user = server.user("reused")
    health = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode()
    async with await RawClient.connect(server.port, f"/ws?token={user.token}",
                                       before=health) as raw:
        await assert_served(raw, user)
        await raw.send_frame(CLOSE, struct.pack("!H", 1000))
        await assert_closed_with(raw, 1000)


async def test_a_handshake_in_a_shape_left_to_aiohttp_is_served(server: RunningServer) -> None:
    """A valid head the listener does not read itself (here with a body length) still
    upgrades, through the route."""
    user = server.user("unusual")
    async with await RawClient.connect(server.port, f"/ws?token={user.token}",
                                       extra_headers="Content-Length: 0\r\n") as raw:
        await assert_served(raw, user)


async def test_the_peers_close_code_is_echoed_and_the_socket_closed(
        server: RunningServer) -> None:
    user = server.user("leaving")
    async with await RawClient.connect(server.port, f"/ws?token={user.token}") as raw:
        await assert_served(raw, user)
        await raw.send_frame(CLOSE, struct.pack("!H", 4321) + b"bye")
        await assert_closed_with(raw, 4321)


async def test_a_ping_frame_is_answered_with_its_data(server: RunningServer) -> None:
    user = server.user("pinger")
    async with await RawClient.connect(server.port, f"/ws?token={user.token}") as raw:
        await assert_served(raw, user)
        await raw.send_frame(PING, b"are you there")
        pong = await next_frame(raw)
        assert (pong.opcode, pong.payload) == (PONG, b"are you there")


async def test_a_fragmented_message_is_read_as_one(server: RunningServer) -> None:
    user = server.user("fragments")
    whole = ping("pieces")
    async with await RawClient.connect(server.port, f"/ws?token={user.token}") as raw:
        assert (await next_json(raw))["type"] == "Connected"
        await raw.send_raw(client_frame(TEXT, whole[:5], fin=False)
                           + client_frame(PING, b"between")
                           + client_frame(0x0, whole[5:]))
        first = await next_frame(raw)
        assert (first.opcode, first.payload) == (PONG, b"between")
        assert (await next_json(raw))["request_id"] == "pieces"


@pytest.mark.parametrize(("name", "frame", "code"), [
    ("unmasked", client_frame(TEXT, ping("x"), masked=False), 1002),
    ("not_utf8", client_frame(TEXT, b'{"type": "Ping", "x": "\xff"}'), 1007),
    ("unknown_opcode", client_frame(0x3, b"?"), 1002),
    ("orphan_continuation", client_frame(0x0, b"?"), 1002),
    ("bad_close_code", client_frame(CLOSE, struct.pack("!H", 1005)), 1002),
])
async def test_broken_framing_closes_with_its_code_and_spares_the_others(
        server: RunningServer, name: str, frame: bytes, code: int) -> None:
    user, bystander = server.user(f"broken-{name}"), server.user(f"bystander-{name}")
    async with await RawClient.connect(server.port, f"/ws?token={bystander.token}") as other:
        await assert_served(other, bystander)
        async with await RawClient.connect(server.port, f"/ws?token={user.token}") as raw:
            assert (await next_json(raw))["type"] == "Connected"
            await raw.send_raw(frame)
            await assert_closed_with(raw, code)
        await other.send_frame(TEXT, ping("still"))
        assert (await next_json(other))["request_id"] == "still"
    async with await RawClient.connect(server.port, f"/ws?token={user.token}") as again:
        await assert_served(again, user)  # the user's slot and state were released


async def test_a_binary_frame_is_a_bad_request_and_the_connection_stays(
        server: RunningServer) -> None:
    user = server.user("binary")
    async with await RawClient.connect(server.port, f"/ws?token={user.token}") as raw:
        assert (await next_json(raw))["type"] == "Connected"
        await raw.send_frame(BINARY, b"\x00\x01")
        error = await next_json(raw)
        assert (error["type"], error["code"]) == ("Error", "BAD_REQUEST")
        await raw.send_frame(TEXT, ping("then"))
        assert (await next_json(raw))["request_id"] == "then"


async def test_a_refused_handshake_is_answered_and_the_connection_closed(
        server: RunningServer) -> None:
    """The 401 of a bad token is the JSON error; nothing more is read on that connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"GET /ws?token=nonsense HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     b"Sec-WebSocket-Version: 13\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), TIMEOUT)  # to the server's close
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 "), head
    assert b"\r\nConnection: close" in head
    assert json.loads(body)["error"]["code"] == "UNAUTHORIZED"
    user = server.user("after-refusal")
    async with await RawClient.connect(server.port, f"/ws?token={user.token}") as raw:
        await assert_served(raw, user)


async def test_frames_far_ahead_of_the_session_are_all_answered_in_order(
        server: RunningServer) -> None:
    """More frames in one write than are read ahead (the socket pauses, then reads on)."""
    user = server.user("pipeliner")
    async with await RawClient.connect(server.port, f"/ws?token={user.token}") as raw:
        assert (await next_json(raw))["type"] == "Connected"
        await raw.send_raw(b"".join(client_frame(TEXT, ping(str(n))) for n in range(300)))
        assert [(await next_json(raw))["request_id"] for _ in range(300)] == [
            str(n) for n in range(300)]
        await raw.send_frame(CLOSE, struct.pack("!H", 1000))
        await assert_closed_with(raw, 1000)
