"""Typing indicators: `UserTyping` to the other subscribers on start and stop, expiry of an
unrefreshed state, and an immediate stop when the typist's connection closes (PROTOCOL.md §3).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import StartServer
from tests.support.client import ChatClient
from tests.support.flows import MISSING, TIMEOUT, assert_error, joined
from tests.support.server import RunningServer, User

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Short enough to keep the suite fast, long enough that a refresh sent well inside it is
# never late on a busy machine (the assertions only bound the expiry from below).
QUICK_TIMEOUT = 1.0


async def typing(client: ChatClient, conversation_id: str, is_typing: bool = True) -> None:
    reply = await client.request("Typing", conversation_id=conversation_id,
                                 is_typing=is_typing, timeout=TIMEOUT)
    assert reply == {"type": "ActionConfirmed", "action": "Typing",
                     "request_id": reply["request_id"]}, reply


async def room_of(server: RunningServer) -> tuple[str, User, ChatClient, User, ChatClient]:
    """A channel with alice and bob, each with a subscribed connection."""
    alice, bob = server.user("alice"), server.user("bob")
    room = (await server.create_conversation(alice, members=[bob]))["id"]
    return room, alice, await joined(server, alice, room), bob, await joined(server, bob, room)


async def test_typing_reaches_the_other_subscribers(server: RunningServer) -> None:
    """Other subscribers get `UserTyping{is_typing:true}` naming the typist."""
    room, alice, a, _, b = await room_of(server)
    await typing(a, room)
    event = await b.expect("UserTyping", timeout=TIMEOUT)
    assert event == {"type": "UserTyping", "conversation_id": room, "user_id": alice.id,
                     "user_name": "alice", "is_typing": True}


async def test_the_typist_does_not_hear_itself(server: RunningServer) -> None:
    """None of the typist's own connections gets its `UserTyping`."""
    room, alice, a, _, b = await room_of(server)
    other_tab = await joined(server, alice, room)
    await typing(a, room)
    await b.expect("UserTyping", timeout=TIMEOUT, is_typing=True)
    await a.expect_none("UserTyping")
    await other_tab.expect_none("UserTyping", within=0.0)


async def test_stopping_is_broadcast(server: RunningServer) -> None:
    """`is_typing:false` ends the state and is broadcast."""
    room, alice, a, _, b = await room_of(server)
    await typing(a, room)
    await typing(a, room, False)
    await b.expect("UserTyping", timeout=TIMEOUT, is_typing=True)
    stop = await b.expect("UserTyping", timeout=TIMEOUT, is_typing=False)
    assert stop["user_id"] == alice.id


async def test_a_refresh_is_not_rebroadcast(server: RunningServer) -> None:
    """Only transitions travel: repeating `is_typing:true` broadcasts nothing new."""
    room, _, a, _, b = await room_of(server)
    await typing(a, room)
    await typing(a, room)
    await typing(a, room)
    await b.expect("UserTyping", timeout=TIMEOUT, is_typing=True)
    await b.expect_none("UserTyping")


async def test_stopping_when_not_typing_broadcasts_nothing(server: RunningServer) -> None:
    """`is_typing:false` without a typing state is confirmed and silent."""
    room, _, a, _, b = await room_of(server)
    await typing(a, room, False)
    await b.expect_none("UserTyping")


async def test_typing_again_after_stopping_is_broadcast_again(server: RunningServer) -> None:
    """A new typing state after a stop is a new transition."""
    room, _, a, _, b = await room_of(server)
    for is_typing in (True, False, True):
        await typing(a, room, is_typing)
        await b.expect("UserTyping", timeout=TIMEOUT, is_typing=is_typing)


async def test_an_unrefreshed_state_expires(start_server: StartServer) -> None:
    """Without a refresh, `UserTyping{is_typing:false}` follows after the timeout."""
    async with start_server(rate_limits=False, typing_timeout=QUICK_TIMEOUT) as server:
        room, alice, a, _, b = await room_of(server)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await typing(a, room)
        await b.expect("UserTyping", timeout=TIMEOUT, is_typing=True)
        stop = await b.expect("UserTyping", timeout=TIMEOUT + QUICK_TIMEOUT, is_typing=False)
        assert loop.time() - started >= QUICK_TIMEOUT * 0.95
        assert stop["user_id"] == alice.id
        assert server.internals.typing.active == 0


async def test_a_refresh_postpones_the_expiry(start_server: StartServer) -> None:
    """A refresh restarts the timeout, and the state expires once, a timeout after it."""
    async with start_server(rate_limits=False, typing_timeout=QUICK_TIMEOUT) as server:
        room, _, a, _, b = await room_of(server)
        loop = asyncio.get_running_loop()
        await typing(a, room)
        await asyncio.sleep(QUICK_TIMEOUT * 0.6)
        refreshed = loop.time()
        await typing(a, room)
        await b.expect("UserTyping", timeout=TIMEOUT, is_typing=False)
        assert loop.time() - refreshed >= QUICK_TIMEOUT * 0.95
        assert [f["is_typing"] for f in b.all("UserTyping")] == [True, False]


async def test_closing_the_connection_stops_typing_at_once(server: RunningServer) -> None:
    """A typist's closed connection ends its typing long before the 6 s expiry."""
    room, _, a, _, b = await room_of(server)
    await typing(a, room)
    await b.expect("UserTyping", timeout=TIMEOUT, is_typing=True)
    loop = asyncio.get_running_loop()
    closed = loop.time()
    await a.close()
    await b.expect("UserTyping", timeout=TIMEOUT, is_typing=False)
    assert loop.time() - closed < server.settings.typing_timeout


async def test_typing_held_by_another_connection_survives_a_close(
        server: RunningServer) -> None:
    """The state ends when the last connection that refreshed it closes."""
    room, alice, a, _, b = await room_of(server)
    other_tab = await joined(server, alice, room)
    await typing(a, room)
    await typing(other_tab, room)
    await b.expect("UserTyping", timeout=TIMEOUT, is_typing=True)
    await a.close()
    await b.expect_none("UserTyping")
    await other_tab.close()
    await b.expect("UserTyping", timeout=TIMEOUT, is_typing=False)


async def test_a_read_only_member_may_not_type(server: RunningServer) -> None:
    """Typing needs `send`: a `read_only` member is FORBIDDEN."""
    room, alice, _, _, b = await room_of(server)
    reader = server.user()
    await server.ensure_user(reader)
    async with server.http(alice) as http:
        response = await http.put(f"/api/v1/conversations/{room}/members/{reader.id}",
                                  json={"role": "read_only"})
    assert response.status_code in (200, 201), response.text
    client = await server.connect(reader)
    reply = await client.request("Typing", conversation_id=room, is_typing=True,
                                 request_id="ro")
    assert_error(reply, "FORBIDDEN", request_id="ro")
    await b.expect_none("UserTyping")


async def test_a_non_member_may_not_type_in_a_channel(server: RunningServer) -> None:
    """Reading a channel is open to all; typing in it needs membership."""
    room, _, _, _, b = await room_of(server)
    stranger = await server.connect(server.user())
    reply = await stranger.request("Typing", conversation_id=room, is_typing=True,
                                   request_id="stranger")
    assert_error(reply, "FORBIDDEN", request_id="stranger")
    await b.expect_none("UserTyping")


async def test_typing_in_an_unknown_conversation_is_not_found(server: RunningServer) -> None:
    """An unknown conversation id is NOT_FOUND."""
    client = await server.connect(server.user())
    reply = await client.request("Typing", conversation_id=MISSING, is_typing=True,
                                 request_id="t404")
    assert_error(reply, "NOT_FOUND", field="$.conversation_id", request_id="t404")


@pytest.mark.parametrize(("fields", "field"), [
    ({"is_typing": "yes"}, "$.is_typing"),
    ({}, "is_typing"),
    ({"is_typing": True, "conversation_id": "nope"}, "$.conversation_id"),
], ids=["not_a_bool", "missing", "bad_id"])
async def test_bad_typing_requests_are_refused(server: RunningServer, fields: dict[str, Any],
                                               field: str) -> None:
    """Malformed `Typing` frames get BAD_REQUEST naming the field."""
    client = await server.connect(server.user())
    fields.setdefault("conversation_id", MISSING)
    reply = await client.request("Typing", request_id="bad", **fields)
    assert reply["type"] == "Error", reply
    assert reply["code"] == "BAD_REQUEST"
    assert field in reply["message"]
