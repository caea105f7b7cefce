"""The outbox against a real server: sends over the rate limit wait `retry_after_ms` and
go again with the same client_message_id; a send made while disconnected waits; an
expired token (4001) is refreshed through the callback."""

from __future__ import annotations

import asyncio

import pytest

from hubbub.client import Client
from hubbub.protocol.server import Connected
from tests.conftest import Backend
from tests.sdk.mirror import stored
from tests.sdk.support import FAST, next_of
from tests.support.process import free_port
from tests.support.server import run_server
from tests.support.waiting import until

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_rate_limited_sends_are_retried_and_stored_once(backend: Backend) -> None:
    """Eight sends at once against a burst of two: each resolves, eight stored."""
    async with run_server(backend.settings(send_rate=4.0, send_burst=2)) as server:
        alice = server.user("alice")
        room = (await server.create_conversation(alice, "group", "busy"))["id"]
        async with Client(server.ws_url, alice.token, backoff=FAST) as a:
            sent = await asyncio.wait_for(asyncio.gather(
                *(a.send(room, f"m{i}", client_message_id=f"m{i}") for i in range(8))), 30)
            state = await stored(a, room)
        assert sorted(m.content for m in sent) == [f"m{i}" for i in range(8)]
        assert len(state) == 8


async def test_an_expired_token_is_refreshed_by_the_callback(backend: Backend) -> None:
    """The first token lives two seconds; the server closes with 4001, the client asks the
    callback again and goes on, and a send made meanwhile is stored once."""
    async with run_server(backend.settings(rate_limits=False)) as server:
        alice = server.user("alice")
        room = (await server.create_conversation(alice, "group", "refresh"))["id"]
        tokens: list[str] = []

        def token() -> str:
            tokens.append(server.token(alice.id, "alice", ttl=2 if not tokens else 3600))
            return tokens[-1]

        async with Client(server.ws_url, token, backoff=FAST) as a:
            events = a.events()
            await next_of(events, Connected)
            await a.join(room)
            await next_of(events, Connected, within=20)  # reconnected after the 4001
            assert a.connections == 2
            assert len(tokens) >= 2
            message = await a.send(room, "after the refresh")
            assert message.content == "after the refresh"
            assert list(await stored(a, room)) == [message.id]


async def test_a_send_made_while_disconnected_waits(backend: Backend) -> None:
    """No server reachable yet (the URL provider names a closed port): the send waits,
    and is stored once the provider names the server."""
    async with run_server(backend.settings(rate_limits=False)) as server:
        alice = server.user("alice")
        room = (await server.create_conversation(alice, "group", "offline"))["id"]
        reachable = asyncio.Event()
        attempts: list[str] = []
        dead = f"ws://127.0.0.1:{free_port()}/ws"

        def url() -> str:
            attempts.append("dead" if not reachable.is_set() else "live")
            return server.ws_url if reachable.is_set() else dead

        client = Client(url, alice.token, backoff=FAST)
        starting = asyncio.ensure_future(client.start())
        try:
            sending = asyncio.ensure_future(client.send(room, "queued"))
            await until(lambda: attempts.count("dead") >= 3, "the client retried")
            assert not sending.done()
            reachable.set()
            message = await asyncio.wait_for(sending, 20)
            await asyncio.wait_for(starting, 20)
            assert message.content == "queued"
            assert list(await stored(client, room)) == [message.id]
        finally:
            await client.close()
