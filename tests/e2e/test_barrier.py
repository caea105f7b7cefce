"""The test client's `expect_none` catches an event still on its way (it waits on a barrier,
not a sleep, so it must prove the event is not coming rather than miss it)."""

from __future__ import annotations

import pytest

from tests.support.flows import joined, send
from tests.support.server import RunningServer


async def test_expect_none_sees_a_broadcast_in_flight(server: RunningServer) -> None:
    """A `NewMessage` published just before the sender's answer is caught."""
    alice, bob = server.user(), server.user()
    conversation = await server.create_conversation(alice, "group", members=[bob])
    a = await joined(server, alice, conversation["id"])
    b = await joined(server, bob, conversation["id"])
    await send(a, conversation["id"])
    with pytest.raises(AssertionError, match="unexpected NewMessage"):
        await b.expect_none("NewMessage")


async def test_barrier_frames_are_not_kept(server: RunningServer) -> None:
    """What `expect_none` sends and receives leaves no frame behind."""
    client = await server.connect(server.user())
    before = list(client.frames)
    await client.expect_none("NewMessage")
    assert client.frames == before
