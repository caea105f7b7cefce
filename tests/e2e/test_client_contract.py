"""The suite's ChatClient checks every server frame against the SDK's typed messages: a
frame the SDK cannot read fails the test that received it, at its next wait or at the
client's close. A small server of the test's own sends such a frame on purpose."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import msgspec
import pytest
from aiohttp import web

from hubbub.client import Socket
from hubbub.protocol.server import Connected, Limits, Pong
from tests.support.client import ChatClient

pytestmark = pytest.mark.asyncio(loop_scope="session")

CONNECTED = Connected(
    user_id="u-1", user_name="u", connection_id="c-1", server_time="2026-01-01T00:00:00Z",
    heartbeat_interval_ms=30000,
    limits=Limits(max_frame_bytes=65536, max_content_chars=4000, max_attachments=10,
                  history_limit_max=100, sync_limit_max=500, send_rate_per_s=5.0,
                  send_burst=20, other_rate_per_s=50.0, other_burst=100,
                  max_reaction_emoji_per_message=20, max_reactions_per_user_per_message=3,
                  conversations_per_hour=30.0, conversation_burst=30))
# A NewMessage whose message lacks every required field: JSON, but no frame of §4.
UNREADABLE = '{"type": "NewMessage", "message": {"id": "m-1"}}'
PONG = '{"type": "Pong", "timestamp": "after", "server_time": "2026-01-01T00:00:00Z"}'


@pytest.fixture
async def wrong_server() -> AsyncIterator[str]:
    """A WebSocket endpoint that sends `Connected`, the unreadable frame, then a `Pong`,
    and stays open; its URL."""
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(msgspec.json.encode(CONNECTED).decode())
        await ws.send_str(UNREADABLE)
        await ws.send_str(PONG)
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"ws://127.0.0.1:{port}/ws"
    finally:
        await runner.cleanup()


async def test_a_frame_the_sdk_cannot_read_fails_the_wait(wrong_server: str) -> None:
    """The dict view still has the frame, but waiting for anything raises, naming it."""
    client = await ChatClient.connect(wrong_server, "any")
    with pytest.raises(AssertionError, match=r"frames the SDK cannot read.*m-1"):
        await client.expect("Pong")
    assert [f["type"] for f in client.frames] == ["NewMessage", "Pong"]
    with pytest.raises(AssertionError, match="cannot read"):
        await client.close()


async def test_a_frame_the_sdk_cannot_read_fails_at_close(wrong_server: str) -> None:
    """A test that never waited again still fails, at the close of its clients."""
    client = await ChatClient.connect(wrong_server, "any")
    await asyncio.sleep(0.2)  # the frames arrive; nothing waits for them
    with pytest.raises(AssertionError, match="cannot read"):
        await client.close()


async def test_the_sdk_itself_skips_the_frame(wrong_server: str) -> None:
    """The contrast: an application's `Socket.receive` logs the frame and goes on."""
    async with aiohttp.ClientSession() as session:
        socket = await Socket.open(session, wrong_server, "any")
        assert isinstance(await socket.receive(), Connected)
        after = await asyncio.wait_for(socket.receive(), 5)
        await socket.close()
    assert isinstance(after, Pong)
    assert after.timestamp == "after"
