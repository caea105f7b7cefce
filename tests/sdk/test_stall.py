"""A client that stops reading (the network stalls between it and the server) is dropped
by the server (4008 slow consumer, or its pings unanswered); once bytes flow again the SDK
reconnects, resends what had no answer and syncs: the same state as stored, every send
resolved once."""

from __future__ import annotations

import asyncio

import pytest

from hubbub.client import Client
from tests.conftest import Backend
from tests.sdk.mirror import Mirror, assert_sent_once, chatter, converges, following, stored
from tests.sdk.stall import StallingProxy
from tests.sdk.support import FAST
from tests.support.server import run_server
from tests.support.waiting import until

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_stalled_client_is_dropped_and_catches_up(backend: Backend) -> None:
    settings = backend.settings(rate_limits=False, max_pending_bytes=64 * 1024,
                                heartbeat_interval=0.5, heartbeat_timeout=2.0)
    async with run_server(settings) as server:
        alice, bob = server.user("alice"), server.user("bob")
        room = (await server.create_conversation(alice, "group", "stall", members=[bob]))["id"]
        proxy = StallingProxy(server.port)
        await proxy.start()
        try:
            async with Client(proxy.ws_url, alice.token, backoff=FAST) as a, \
                    Client(server.ws_url, bob.token, backoff=FAST) as b:
                mirror = Mirror(room)
                async with following(a, mirror):
                    await a.join(room)
                    await b.join(room)
                    await a.send(room, "before the stall")
                    proxy.pause()
                    # Sends during the stall reach the server; their answers do not.
                    mine = asyncio.ensure_future(chatter(a, room, 10, "alice"))
                    others = await chatter(b, room, 40, "bob", " " + "x" * 3000)
                    hub = server.internals.hub
                    await until(lambda: not hub.connections_of(alice.id),
                                "the server dropped the stalled connection", within=30)
                    assert not mine.done()
                    proxy.resume()
                    sent = await asyncio.wait_for(mine, 60)
                    await converges(mirror, a)
                state = await stored(a, room)
                assert_sent_once(sent, state, 10)
                assert_sent_once(others, state, 40)
                assert len(state) == 51
                assert a.connections >= 2
        finally:
            await proxy.close()
