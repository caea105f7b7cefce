"""A member's own settings over the wire: `UpdateMembership` and `PATCH …/membership` set
`muted` and `pinned`, shown in the conversation list with the member's `last_read_seq`
(one read mark for every device); the caller's other devices hear `MembershipUpdated`.
One's own messages never count as unread. Both backends."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.flows import MISSING, TIMEOUT, assert_error, joined, send
from tests.support.server import RunningServer, User

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def listed(server: RunningServer, user: User) -> list[dict[str, Any]]:
    async with server.http(user) as http:
        response = await http.get("/api/v1/conversations")
    assert response.status_code == 200, response.text
    conversations: list[dict[str, Any]] = response.json()["conversations"]
    return conversations


async def one(server: RunningServer, user: User, room: str) -> dict[str, Any]:
    [found] = [c for c in await listed(server, user) if c["id"] == room]
    return found


async def test_mute_and_pin_over_the_websocket(server: RunningServer) -> None:
    alice, bob = server.user("alice"), server.user("bob")
    room = (await server.create_conversation(alice, kind="group", members=[bob]))["id"]
    phone, laptop = await server.connect(bob), await server.connect(bob)
    reply = await phone.request("UpdateMembership", conversation_id=room, muted=True,
                                timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    assert reply["action"] == "UpdateMembership"
    assert (reply["conversation"]["muted"], reply["conversation"]["pinned"]) == (True, False)
    heard = await laptop.expect("MembershipUpdated", timeout=TIMEOUT)
    assert heard == {"type": "MembershipUpdated", "conversation_id": room, "muted": True,
                     "pinned": False}
    await phone.expect_none("MembershipUpdated")
    seen = await one(server, bob, room)
    assert (seen["muted"], seen["pinned"]) == (True, False)
    theirs = await one(server, alice, room)
    assert (theirs["muted"], theirs["pinned"]) == (False, False)


async def test_pinned_first_over_rest(server: RunningServer) -> None:
    alice = server.user("alice")
    older = (await server.create_conversation(alice, kind="group"))["id"]
    newer = (await server.create_conversation(alice, kind="group"))["id"]
    assert [c["id"] for c in await listed(server, alice)][:2] == [newer, older]
    async with server.http(alice) as http:
        response = await http.patch(f"/api/v1/conversations/{older}/membership",
                                    json={"pinned": True})
    assert response.status_code == 200, response.text
    assert response.json()["pinned"] is True
    assert response.json()["id"] == older
    assert [c["id"] for c in await listed(server, alice)][:2] == [older, newer]


async def test_bad_settings_are_refused_and_nothing_stored(server: RunningServer) -> None:
    alice, stranger = server.user("alice"), server.user("stranger")
    room = (await server.create_conversation(alice, kind="group"))["id"]
    await server.ensure_user(stranger)
    url = f"/api/v1/conversations/{room}/membership"
    async with server.http(alice) as http:
        empty = await http.patch(url, json={})
        assert empty.status_code == 400, empty.text
        assert "$.muted" in empty.text
        wrong = await http.patch(url, json={"muted": "yes"})
        assert wrong.status_code == 400, wrong.text
        assert "$.muted" in wrong.text
        unknown = await http.patch(f"/api/v1/conversations/{MISSING}/membership",
                                   json={"muted": True})
        assert unknown.status_code == 404, unknown.text
    async with server.http(stranger) as http:
        foreign = await http.patch(url, json={"muted": True})
        assert foreign.status_code == 403, foreign.text
    s = await server.connect(stranger)
    reply = await s.request("UpdateMembership", conversation_id=room, pinned=True,
                            request_id="u1", timeout=TIMEOUT)
    assert_error(reply, "FORBIDDEN", request_id="u1")
    seen = await one(server, alice, room)
    assert (seen["muted"], seen["pinned"]) == (False, False)


async def test_the_read_mark_survives_a_reload(server: RunningServer) -> None:
    """The summary carries the caller's `last_read_seq`; one's own messages are never
    unread for oneself."""
    alice, bob = server.user("alice"), server.user("bob")
    room = (await server.create_conversation(alice, kind="group", members=[bob]))["id"]
    a = await joined(server, alice, room)
    sent = [await send(a, room, f"m{n}") for n in range(3)]
    mine = await one(server, alice, room)
    assert (mine["unread_count"], mine["last_read_seq"]) == (0, 0)
    phone = await joined(server, bob, room)
    reply = await phone.request("MarkAsRead", conversation_id=room,
                                message_id=sent[1]["id"], timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    await phone.close()
    laptop = await joined(server, bob, room)  # another device, after a reload
    seen = await one(server, bob, room)
    assert (seen["last_read_seq"], seen["unread_count"]) == (sent[1]["seq"], 1)
    answered = await laptop.request("JoinConversation", conversation_id=room,
                                    timeout=TIMEOUT)
    assert answered["conversation"]["last_read_seq"] == sent[1]["seq"]
