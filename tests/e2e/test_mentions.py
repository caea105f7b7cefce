"""Mentions over the wire (PROTOCOL.md §3 SendMessage `mentions`): members only, `@here`
and `@all` for moderators and above, bounded, and the member's `mention_count` next to
`unread_count`, reset by reading past the message. Both backends."""

from __future__ import annotations

from typing import Any

import pytest

from hubbub.domain.limits import MAX_MENTIONS
from tests.support.client import ChatClient
from tests.support.flows import (
    TIMEOUT,
    all_messages,
    assert_error,
    joined,
    rest_messages,
    send,
    set_role,
)
from tests.support.server import RunningServer, User

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def listed(server: RunningServer, user: User, room: str) -> dict[str, Any]:
    """The conversation as `user` sees it in `GET /api/v1/conversations`."""
    async with server.http(user) as http:
        response = await http.get("/api/v1/conversations")
    assert response.status_code == 200, response.text
    [found] = [c for c in response.json()["conversations"] if c["id"] == room]
    result: dict[str, Any] = found
    return result


async def group(server: RunningServer) -> tuple[str, User, ChatClient, User, User]:
    """A group of alice (owner, subscribed), bob and carol."""
    alice, bob, carol = server.user("alice"), server.user("bob"), server.user("carol")
    room = (await server.create_conversation(alice, kind="group", members=[bob, carol]))["id"]
    return room, alice, await joined(server, alice, room), bob, carol


async def test_a_mention_is_on_the_message_and_counted(server: RunningServer) -> None:
    room, alice, a, bob, carol = await group(server)
    message = await send(a, room, "hi bob", mentions=[bob.id])
    assert message["mentions"] == [bob.id]
    heard = await a.expect("NewMessage", timeout=TIMEOUT)
    assert heard["message"]["mentions"] == [bob.id]
    await send(a, room, "plain")
    seen = await listed(server, bob, room)
    assert (seen["unread_count"], seen["mention_count"]) == (2, 1)
    assert (await listed(server, carol, room))["mention_count"] == 0
    assert (await listed(server, alice, room))["mention_count"] == 0
    [first, _] = await rest_messages(server, bob, room)
    assert first["mentions"] == [bob.id]


async def test_reading_past_the_mention_resets_it(server: RunningServer) -> None:
    room, _, a, bob, _ = await group(server)
    mentioned = await send(a, room, "bob?", mentions=[bob.id])
    later = await send(a, room, "later")
    b = await joined(server, bob, room)
    reply = await b.request("MarkAsRead", conversation_id=room, message_id=mentioned["id"],
                            timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    seen = await listed(server, bob, room)
    assert (seen["mention_count"], seen["unread_count"]) == (0, 1)
    assert seen["last_read_seq"] == mentioned["seq"] < later["seq"]


async def test_a_non_member_mention_is_refused_and_nothing_stored(
        server: RunningServer) -> None:
    room, _, a, bob, _ = await group(server)
    stranger = server.user("stranger")
    await server.ensure_user(stranger)
    reply = await a.request("SendMessage", conversation_id=room, content="hi",
                            mentions=[bob.id, stranger.id], request_id="m1", timeout=TIMEOUT)
    assert_error(reply, "BAD_REQUEST", field="$.mentions[1]", request_id="m1")
    assert await all_messages(a, room) == []
    assert (await listed(server, bob, room))["mention_count"] == 0
    assert (await a.request("Ping", timeout=TIMEOUT))["type"] == "Pong"  # it survives


async def test_too_many_mentions_are_refused(server: RunningServer) -> None:
    room, _, a, _, _ = await group(server)
    assert a.connected["limits"]["max_mentions"] == MAX_MENTIONS  # announced
    reply = await a.request("SendMessage", conversation_id=room, content="hi",
                            mentions=[f"u{n}" for n in range(MAX_MENTIONS + 1)],
                            request_id="m2", timeout=TIMEOUT)
    assert_error(reply, "BAD_REQUEST", field="$.mentions", request_id="m2")
    assert await all_messages(a, room) == []


@pytest.mark.parametrize("everyone", ["@here", "@all"])
async def test_everyone_needs_a_moderator(server: RunningServer, everyone: str) -> None:
    room, alice, _a, bob, carol = await group(server)
    b = await joined(server, bob, room)
    reply = await b.request("SendMessage", conversation_id=room, content="all!",
                            mentions=[everyone], request_id="m3", timeout=TIMEOUT)
    assert_error(reply, "FORBIDDEN", field="$.mentions[0]", request_id="m3")
    assert await all_messages(b, room) == []
    assert await set_role(server, alice, room, bob, "moderator") == 200
    message = await send(b, room, "all!", mentions=[everyone])
    assert message["mentions"] == [everyone]
    for user, count in ((alice, 1), (carol, 1), (bob, 0)):
        assert (await listed(server, user, room))["mention_count"] == count, user


async def test_rest_send_takes_mentions_with_the_same_rules(server: RunningServer) -> None:
    room, alice, a, bob, _ = await group(server)
    stranger = server.user("stranger")
    await server.ensure_user(stranger)
    url = f"/api/v1/conversations/{room}/messages"
    async with server.http(alice) as http:
        refused = await http.post(url, json={"content": "x", "mentions": [stranger.id]})
        assert refused.status_code == 400, refused.text
        assert "$.mentions[0]" in refused.text
        created = await http.post(url, json={"content": "x", "mentions": [bob.id]})
        assert created.status_code == 201, created.text
        assert created.json()["mentions"] == [bob.id]
    assert (await listed(server, bob, room))["mention_count"] == 1
    assert len(await all_messages(a, room)) == 1
