"""MarkAsRead and MarkAsDelivered: idempotent receipts, a read mark that only moves forward,
and the unread counts and last message of `GET /api/v1/conversations` (PROTOCOL.md §2, §3)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.client import ChatClient
from tests.support.flows import MISSING, TIME, TIMEOUT, assert_error, joined, send
from tests.support.server import RunningServer, User

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def mark(client: ChatClient, type_: str, conversation_id: str,
               message_id: str) -> None:
    reply = await client.request(type_, conversation_id=conversation_id,
                                 message_id=message_id, timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    assert reply["action"] == type_


async def listed(server: RunningServer, user: User, room: str) -> dict[str, Any]:
    """The conversation as `user` sees it in `GET /api/v1/conversations`."""
    async with server.http(user) as http:
        response = await http.get("/api/v1/conversations")
    assert response.status_code == 200, response.text
    [found] = [c for c in response.json()["conversations"] if c["id"] == room]
    result: dict[str, Any] = found
    return result


async def setup(server: RunningServer, count: int = 3) -> tuple[
        str, User, ChatClient, User, ChatClient, list[dict[str, Any]]]:
    """A group of alice and bob, both subscribed, with `count` messages from alice."""
    alice, bob = server.user("alice"), server.user("bob")
    room = (await server.create_conversation(alice, kind="group", members=[bob]))["id"]
    a, b = await joined(server, alice, room), await joined(server, bob, room)
    sent = [await send(a, room, f"m{n}") for n in range(count)]
    return room, alice, a, bob, b, sent


async def test_mark_as_read_is_broadcast(server: RunningServer) -> None:
    """`MessageRead` reaches the subscribers, the reader's own connections included."""
    room, _, a, bob, b, sent = await setup(server)
    await mark(b, "MarkAsRead", room, sent[1]["id"])
    for client in (a, b):
        event = await client.expect("MessageRead", timeout=TIMEOUT)
        assert event["conversation_id"] == room
        assert event["message_id"] == sent[1]["id"]
        assert event["user_id"] == bob.id
        assert TIME.match(event["read_at"])


async def test_reading_lowers_the_unread_count(server: RunningServer) -> None:
    """`unread_count` counts the messages after the read mark."""
    room, _, _, bob, b, sent = await setup(server, count=4)
    assert (await listed(server, bob, room))["unread_count"] == 4
    await mark(b, "MarkAsRead", room, sent[1]["id"])
    assert (await listed(server, bob, room))["unread_count"] == 2
    await mark(b, "MarkAsRead", room, sent[3]["id"])
    assert (await listed(server, bob, room))["unread_count"] == 0


async def test_an_older_mark_never_moves_the_read_mark_back(server: RunningServer) -> None:
    """Marking an earlier message is confirmed but changes and broadcasts nothing."""
    room, _, a, bob, b, sent = await setup(server)
    await mark(b, "MarkAsRead", room, sent[2]["id"])
    await a.expect("MessageRead", timeout=TIMEOUT)
    await mark(b, "MarkAsRead", room, sent[0]["id"])
    await a.expect_none("MessageRead")
    assert (await listed(server, bob, room))["unread_count"] == 0


async def test_marking_read_twice_broadcasts_once(server: RunningServer) -> None:
    """A repeated read mark is an idempotent no-op."""
    room, _, a, _, b, sent = await setup(server)
    await mark(b, "MarkAsRead", room, sent[2]["id"])
    await mark(b, "MarkAsRead", room, sent[2]["id"])
    await a.expect("MessageRead", timeout=TIMEOUT)
    await a.expect_none("MessageRead")


async def test_unread_counts_only_other_users_live_messages(server: RunningServer) -> None:
    """One's own messages and deleted ones are never unread."""
    room, alice, a, bob, b, sent = await setup(server, count=3)
    await send(b, room, "from bob")
    reply = await a.request("DeleteMessage", message_id=sent[0]["id"], timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    assert (await listed(server, bob, room))["unread_count"] == 2
    assert (await listed(server, alice, room))["unread_count"] == 1


async def test_the_list_shows_the_newest_message(server: RunningServer) -> None:
    """`last_message` is the conversation's newest message object."""
    room, _, _, bob, b, _ = await setup(server, count=2)
    newest = await send(b, room, "newest")
    listing = await listed(server, bob, room)
    assert listing["last_message"]["id"] == newest["id"]
    assert listing["last_message"]["content"] == "newest"
    assert listing["role"] == "member"


async def test_an_empty_conversation_has_no_last_message(server: RunningServer) -> None:
    """Before any message, `last_message` is null and nothing is unread."""
    alice = server.user()
    room = (await server.create_conversation(alice, kind="group"))["id"]
    listing = await listed(server, alice, room)
    assert listing["last_message"] is None
    assert listing["unread_count"] == 0


async def test_mark_as_delivered_is_broadcast_once(server: RunningServer) -> None:
    """`MessageDelivered` goes out for the first delivery only; repeats are confirmed."""
    room, _, a, bob, b, sent = await setup(server)
    await mark(b, "MarkAsDelivered", room, sent[0]["id"])
    event = await a.expect("MessageDelivered", timeout=TIMEOUT)
    assert event["conversation_id"] == room
    assert event["message_id"] == sent[0]["id"]
    assert event["user_id"] == bob.id
    assert TIME.match(event["delivered_at"])
    await mark(b, "MarkAsDelivered", room, sent[0]["id"])
    await a.expect_none("MessageDelivered")


async def test_each_message_is_delivered_separately(server: RunningServer) -> None:
    """Delivery is per message: a later message gets its own `MessageDelivered`."""
    room, _, a, _, b, sent = await setup(server)
    await mark(b, "MarkAsDelivered", room, sent[2]["id"])
    await mark(b, "MarkAsDelivered", room, sent[1]["id"])
    first = await a.expect("MessageDelivered", timeout=TIMEOUT)
    second = await a.expect("MessageDelivered", timeout=TIMEOUT)
    assert [first["message_id"], second["message_id"]] == [sent[2]["id"], sent[1]["id"]]


async def test_delivery_does_not_mark_read(server: RunningServer) -> None:
    """Delivered is not read: the unread count stays."""
    room, _, _, bob, b, sent = await setup(server)
    await mark(b, "MarkAsDelivered", room, sent[2]["id"])
    assert (await listed(server, bob, room))["unread_count"] == 3


async def test_a_channel_reader_who_is_not_a_member_is_confirmed_silently(
        server: RunningServer) -> None:
    """A non-member reading a public channel has no marks to keep: confirmed, not broadcast."""
    alice = server.user()
    room = (await server.create_conversation(alice))["id"]
    a = await joined(server, alice, room)
    message = await send(a, room, "public")
    stranger = await server.connect(server.user())
    await mark(stranger, "MarkAsRead", room, message["id"])
    await mark(stranger, "MarkAsDelivered", room, message["id"])
    await a.expect_none("MessageRead")
    await a.expect_none("MessageDelivered")


@pytest.mark.parametrize("action", ["MarkAsRead", "MarkAsDelivered"])
async def test_a_message_of_another_conversation_is_not_found(server: RunningServer,
                                                              action: str) -> None:
    """The message must belong to the named conversation."""
    room, alice, a, _, _, _ = await setup(server)
    other = (await server.create_conversation(alice, kind="group"))["id"]
    elsewhere = await send(await joined(server, alice, other), other, "elsewhere")
    reply = await a.request(action, conversation_id=room, message_id=elsewhere["id"],
                            request_id="wrong")
    assert_error(reply, "NOT_FOUND", field="$.message_id", request_id="wrong")


@pytest.mark.parametrize("action", ["MarkAsRead", "MarkAsDelivered"])
async def test_an_unknown_message_is_not_found(server: RunningServer, action: str) -> None:
    """An unknown message id is NOT_FOUND."""
    room, _, a, _, _, _ = await setup(server)
    reply = await a.request(action, conversation_id=room, message_id=MISSING,
                            request_id="gone")
    assert_error(reply, "NOT_FOUND", field="$.message_id", request_id="gone")


@pytest.mark.parametrize("action", ["MarkAsRead", "MarkAsDelivered"])
async def test_an_unknown_conversation_is_not_found(server: RunningServer, action: str) -> None:
    """An unknown conversation id is NOT_FOUND."""
    client = await server.connect(server.user())
    reply = await client.request(action, conversation_id=MISSING, message_id=MISSING,
                                 request_id="nowhere")
    assert_error(reply, "NOT_FOUND", field="$.conversation_id", request_id="nowhere")


@pytest.mark.parametrize("action", ["MarkAsRead", "MarkAsDelivered"])
async def test_an_outsider_cannot_mark_in_a_private_group(server: RunningServer,
                                                          action: str) -> None:
    """Receipts need read access: FORBIDDEN for non-members of a group."""
    room, _, a, _, _, sent = await setup(server)
    outsider = await server.connect(server.user())
    reply = await outsider.request(action, conversation_id=room, message_id=sent[0]["id"],
                                   request_id="peek")
    assert_error(reply, "FORBIDDEN", request_id="peek")
    await a.expect_none("MessageRead")


@pytest.mark.parametrize("action", ["MarkAsRead", "MarkAsDelivered"])
async def test_bad_ids_are_refused(server: RunningServer, action: str) -> None:
    """Ids that are not UUIDs get BAD_REQUEST naming the field."""
    room, _, a, _, _, _ = await setup(server, count=0)
    reply = await a.request(action, conversation_id=room, message_id="42", request_id="bad")
    assert_error(reply, "BAD_REQUEST", field="$.message_id", request_id="bad")
