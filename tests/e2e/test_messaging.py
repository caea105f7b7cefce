"""Sending, replying, attachments, idempotent retries, edits, deletes, joining, leaving and
Ping over real sockets (PROTOCOL.md §2, §3)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.flows import (
    MISSING,
    TIME,
    TIMEOUT,
    UUID,
    all_messages,
    assert_error,
    assert_tombstone,
    attachment,
    joined,
    rest_messages,
    send,
)
from tests.support.server import RunningServer

pytestmark = pytest.mark.asyncio(loop_scope="session")


# -- SendMessage ----------------------------------------------------------------------------


async def test_send_confirms_the_stored_message(server: RunningServer) -> None:
    """`ActionConfirmed` carries the full message object of §2 as it was stored."""
    alice = server.user("alice")
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    reply = await client.request("SendMessage", conversation_id=room["id"], content="hi",
                                 request_id="send-1")
    assert reply["type"] == "ActionConfirmed"
    assert reply["action"] == "SendMessage"
    assert reply["request_id"] == "send-1"
    message = reply["message"]
    assert UUID.match(message["id"])
    assert message["conversation_id"] == room["id"]
    assert message["sender_id"] == alice.id
    assert message["sender_name"] == "alice"
    assert message["content"] == "hi"
    assert message["seq"] >= 1
    assert message["version"] == message["seq"]
    assert message["parent_id"] is None
    assert message["attachments"] == []
    assert message["reactions"] == []
    assert message["client_message_id"] is None
    assert TIME.match(message["created_at"])
    assert message["edited_at"] is None
    assert message["deleted_at"] is None


async def test_new_message_reaches_every_subscriber_and_the_sender(
        server: RunningServer) -> None:
    """`NewMessage` goes to each subscribed connection, the sender's own included."""
    alice, bob = server.user("alice"), server.user("bob")
    room = await server.create_conversation(alice, members=[bob])
    sender = await joined(server, alice, room["id"])
    sender_other_tab = await joined(server, alice, room["id"])
    receiver = await joined(server, bob, room["id"])
    message = await send(sender, room["id"], "to all")
    for client in (sender, sender_other_tab, receiver):
        event = await client.expect("NewMessage", timeout=TIMEOUT)
        assert event["message"] == message
        assert "request_id" not in event


async def test_members_who_did_not_join_get_no_broadcast(server: RunningServer) -> None:
    """Membership alone subscribes nothing: only `JoinConversation` does."""
    alice, bob = server.user("alice"), server.user("bob")
    room = await server.create_conversation(alice, members=[bob])
    sender = await joined(server, alice, room["id"])
    idle = await server.connect(bob)
    await send(sender, room["id"], "quiet")
    await sender.expect("NewMessage", timeout=TIMEOUT)
    await idle.expect_none("NewMessage", within=0.5)


async def test_a_reply_carries_its_parent_id(server: RunningServer) -> None:
    """`parent_id` links a reply to a message of the same conversation."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    parent = await send(client, room["id"], "question")
    reply = await send(client, room["id"], "answer", parent_id=parent["id"])
    assert reply["parent_id"] == parent["id"]
    history = await all_messages(client, room["id"])
    assert [m["parent_id"] for m in history] == [None, parent["id"]]


async def test_a_parent_from_another_conversation_is_refused(server: RunningServer) -> None:
    """A reply cannot point into another conversation; nothing is stored."""
    alice = server.user()
    room = await server.create_conversation(alice, name="one")
    other = await server.create_conversation(alice, name="two")
    client = await joined(server, alice, room["id"])
    foreign = await send(client, other["id"], "elsewhere")
    reply = await client.request("SendMessage", conversation_id=room["id"], content="re",
                                 parent_id=foreign["id"], request_id="p1")
    assert_error(reply, "BAD_REQUEST", field="$.parent_id", request_id="p1")
    assert await all_messages(client, room["id"]) == []


async def test_an_unknown_parent_is_refused(server: RunningServer) -> None:
    """A reply to a message that does not exist is refused, naming `parent_id`."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    reply = await client.request("SendMessage", conversation_id=room["id"], content="re",
                                 parent_id=MISSING, request_id="p2")
    assert_error(reply, "BAD_REQUEST", field="$.parent_id", request_id="p2")
    assert await all_messages(client, room["id"]) == []


async def test_attachments_are_stored_and_broadcast(server: RunningServer) -> None:
    """Attachment metadata comes back unchanged in the ack, the broadcast and history."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    files = [attachment(),
             {"url": "http://files.example/v.mp4", "name": "v.mp4", "mime_type": "video/mp4",
              "size": 0, "duration_ms": 1500, "thumbnail_url": "https://files.example/v.jpg"}]
    message = await send(client, room["id"], "look", attachments=files)
    assert message["attachments"] == files
    assert (await client.expect("NewMessage", timeout=TIMEOUT))["message"]["attachments"] == files
    assert (await all_messages(client, room["id"]))[0]["attachments"] == files


async def test_an_attachment_alone_makes_a_message(server: RunningServer) -> None:
    """Empty content is fine when the message carries an attachment."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    message = await send(client, room["id"], "", attachments=[attachment()])
    assert message["content"] == ""
    assert len(message["attachments"]) == 1


BAD_ATTACHMENTS: dict[str, tuple[list[dict[str, Any]], str]] = {
    "ftp_url": ([attachment(url="ftp://files.example/a.png")], "$.attachments[0].url"),
    "relative_url": ([attachment(url="/a.png")], "$.attachments[0].url"),
    "javascript_url": ([attachment(url="javascript:alert(1)")], "$.attachments[0].url"),
    "long_url": ([attachment(url="https://x.example/" + "a" * 2040)], "$.attachments[0].url"),
    "empty_name": ([attachment(name="")], "$.attachments[0].name"),
    "long_name": ([attachment(name="n" * 256)], "$.attachments[0].name"),
    "bad_mime": ([attachment(mime_type="png")], "$.attachments[0].mime_type"),
    "negative_size": ([attachment(size=-1)], "$.attachments[0].size"),
    "string_size": ([attachment(size="5")], "$.attachments[0].size"),
    "negative_width": ([attachment(width=-5)], "$.attachments[0].width"),
    "bad_thumbnail": ([attachment(thumbnail_url="file:///etc/passwd")],
                      "$.attachments[0].thumbnail_url"),
    "missing_url": ([{k: v for k, v in attachment().items() if k != "url"}],
                    "$.attachments[0].url"),
    "second_is_bad": ([attachment(), attachment(size=-1)], "$.attachments[1].size"),
    "eleven": ([attachment() for _ in range(11)], "$.attachments"),
    "not_a_list": ([], "$.attachments"),
}


@pytest.mark.parametrize("case", sorted(BAD_ATTACHMENTS))
async def test_bad_attachments_are_refused(server: RunningServer, case: str) -> None:
    """Each §2 attachment rule is enforced, naming the field; nothing is stored."""
    files, field = BAD_ATTACHMENTS[case]
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    value: Any = {"url": "https://x.example/a"} if case == "not_a_list" else files
    reply = await client.request("SendMessage", conversation_id=room["id"], content="x",
                                 attachments=value, request_id=f"att-{case}")
    assert_error(reply, "BAD_REQUEST", field=field, request_id=f"att-{case}")
    await client.expect_none("NewMessage", within=0.2)
    assert await all_messages(client, room["id"]) == []


@pytest.mark.parametrize("content", ["", "   ", "\n\t"])
async def test_blank_message_without_attachments_is_refused(server: RunningServer,
                                                             content: str) -> None:
    """A message needs non-blank content or an attachment."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    reply = await client.request("SendMessage", conversation_id=room["id"], content=content,
                                 request_id="blank")
    assert_error(reply, "BAD_REQUEST", field="$.content", request_id="blank")
    assert await all_messages(client, room["id"]) == []


async def test_content_is_limited_to_4000_characters(server: RunningServer) -> None:
    """4000 characters are accepted, 4001 refused (counted in characters, not bytes)."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    longest = "é" * 4000
    assert (await send(client, room["id"], longest))["content"] == longest
    reply = await client.request("SendMessage", conversation_id=room["id"],
                                 content="é" * 4001, request_id="long")
    assert_error(reply, "BAD_REQUEST", field="$.content", request_id="long")
    assert len(await all_messages(client, room["id"])) == 1


# -- idempotency ----------------------------------------------------------------------------


async def test_a_retried_client_message_id_returns_the_same_message(
        server: RunningServer) -> None:
    """The same `(sender, conversation, client_message_id)` is stored once and broadcast once."""
    alice, bob = server.user("alice"), server.user("bob")
    room = await server.create_conversation(alice, members=[bob])
    sender = await joined(server, alice, room["id"])
    watcher = await joined(server, bob, room["id"])
    first = await send(sender, room["id"], "once", client_message_id="c-1")
    again = await send(sender, room["id"], "once", client_message_id="c-1")
    changed = await send(sender, room["id"], "different text", client_message_id="c-1")
    assert first["client_message_id"] == "c-1"
    assert again == first
    assert changed == first
    assert (await watcher.expect("NewMessage", timeout=TIMEOUT))["message"] == first
    await watcher.expect_none("NewMessage", within=0.5)
    assert len(sender.all("NewMessage")) == 1
    assert [m["id"] for m in await all_messages(sender, room["id"])] == [first["id"]]


async def test_concurrent_retries_store_one_message(server: RunningServer) -> None:
    """Retries racing each other (pipelined and from two connections) still store one."""
    alice = server.user()
    room = await server.create_conversation(alice)
    one = await joined(server, alice, room["id"])
    two = await joined(server, alice, room["id"])
    results = await asyncio.gather(*(
        send(client, room["id"], "race", client_message_id="c-race")
        for client in (one, two, one, two, one)
    ))
    assert len({m["id"] for m in results}) == 1
    assert len(await all_messages(one, room["id"])) == 1
    await one.expect("NewMessage", timeout=TIMEOUT)
    await one.expect_none("NewMessage", within=0.5)


async def test_client_message_ids_are_scoped_to_sender_and_conversation(
        server: RunningServer) -> None:
    """Another sender, or another conversation, with the same key makes a new message."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, members=[bob])
    other = await server.create_conversation(alice, name="other")
    alice_ws = await joined(server, alice, room["id"])
    bob_ws = await joined(server, bob, room["id"])
    mine = await send(alice_ws, room["id"], "a", client_message_id="same")
    theirs = await send(bob_ws, room["id"], "b", client_message_id="same")
    elsewhere = await send(alice_ws, other["id"], "c", client_message_id="same")
    assert len({mine["id"], theirs["id"], elsewhere["id"]}) == 3


async def test_a_retry_over_rest_returns_the_message_sent_over_the_socket(
        server: RunningServer) -> None:
    """Idempotency holds across transports: REST answers 200 with the stored message."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    message = await send(client, room["id"], "via ws", client_message_id="c-x")
    async with server.http(alice) as http:
        response = await http.post(f"/api/v1/conversations/{room['id']}/messages",
                                   json={"content": "via ws", "client_message_id": "c-x"})
    assert response.status_code == 200
    assert response.json() == message
    assert len(await rest_messages(server, alice, room["id"])) == 1


@pytest.mark.parametrize("key", ["", "k" * 65])
async def test_client_message_id_length_is_checked(server: RunningServer, key: str) -> None:
    """`client_message_id` is 1–64 characters."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    reply = await client.request("SendMessage", conversation_id=room["id"], content="x",
                                 client_message_id=key, request_id="cm")
    assert_error(reply, "BAD_REQUEST", field="$.client_message_id", request_id="cm")
    assert await all_messages(client, room["id"]) == []


# -- EditMessage ----------------------------------------------------------------------------


async def test_the_sender_edits_a_message(server: RunningServer) -> None:
    """An edit replaces the content, sets `edited_at`, bumps `version` and is broadcast."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, members=[bob])
    client = await joined(server, alice, room["id"])
    watcher = await joined(server, bob, room["id"])
    original = await send(client, room["id"], "helo")
    reply = await client.request("EditMessage", message_id=original["id"], content="hello",
                                 request_id="e1")
    assert reply["type"] == "ActionConfirmed"
    assert reply["action"] == "EditMessage"
    assert reply["request_id"] == "e1"
    edited = reply["message"]
    assert edited["id"] == original["id"]
    assert edited["content"] == "hello"
    assert edited["seq"] == original["seq"]
    assert edited["version"] > original["version"]
    assert TIME.match(edited["edited_at"])
    assert edited["created_at"] == original["created_at"]
    event = await watcher.expect("MessageEdited", timeout=TIMEOUT)
    assert event["message"] == edited
    assert (await all_messages(watcher, room["id"])) == [edited]


async def test_edits_keep_a_history(server: RunningServer) -> None:
    """Every earlier content is kept, oldest first, with the version of each edit."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    message = await send(client, room["id"], "v1")
    versions = []
    for content in ("v2", "v3"):
        reply = await client.request("EditMessage", message_id=message["id"], content=content)
        assert reply["type"] == "ActionConfirmed", reply
        versions.append(reply["message"]["version"])
    history = await server.internals.store.edit_history(message["id"])
    assert [(version, previous) for version, previous, _ in history] == [
        (versions[0], "v1"), (versions[1], "v2")
    ]


async def test_only_the_sender_may_edit(server: RunningServer) -> None:
    """Another member — even the owner, who moderates — gets FORBIDDEN; nothing changes."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, members=[bob])
    owner = await joined(server, alice, room["id"])
    author = await joined(server, bob, room["id"])
    message = await send(author, room["id"], "mine")
    reply = await owner.request("EditMessage", message_id=message["id"], content="yours",
                                request_id="e2")
    assert_error(reply, "FORBIDDEN", request_id="e2")
    await author.expect_none("MessageEdited", within=0.3)
    assert await all_messages(owner, room["id"]) == [message]
    assert await server.internals.store.edit_history(message["id"]) == []


async def test_editing_to_blank_content_is_refused(server: RunningServer) -> None:
    """An edit may not empty a message."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    message = await send(client, room["id"], "text")
    reply = await client.request("EditMessage", message_id=message["id"], content="  ",
                                 request_id="e3")
    assert_error(reply, "BAD_REQUEST", field="$.content", request_id="e3")
    assert await all_messages(client, room["id"]) == [message]


async def test_editing_an_unknown_message_is_not_found(server: RunningServer) -> None:
    """An unknown `message_id` is NOT_FOUND."""
    client = await server.connect(server.user())
    reply = await client.request("EditMessage", message_id=MISSING, content="x",
                                 request_id="e4")
    assert_error(reply, "NOT_FOUND", field="$.message_id", request_id="e4")


async def test_editing_a_deleted_message_is_a_conflict(server: RunningServer) -> None:
    """A tombstone cannot be edited back to life."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    message = await send(client, room["id"], "gone soon")
    assert (await client.request("DeleteMessage", message_id=message["id"]))["type"] == \
        "ActionConfirmed"
    reply = await client.request("EditMessage", message_id=message["id"], content="back",
                                 request_id="e5")
    assert_error(reply, "CONFLICT", request_id="e5")
    assert_tombstone((await all_messages(client, room["id"]))[0])


# -- DeleteMessage --------------------------------------------------------------------------


async def test_the_sender_deletes_a_message(server: RunningServer) -> None:
    """A delete is confirmed with the id and broadcast as `MessageDeleted`, without content."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, members=[bob])
    author = await joined(server, bob, room["id"])
    watcher = await joined(server, alice, room["id"])
    message = await send(author, room["id"], "secret", attachments=[attachment()])
    reply = await author.request("DeleteMessage", message_id=message["id"], request_id="d1")
    assert reply == {"type": "ActionConfirmed", "action": "DeleteMessage", "request_id": "d1",
                     "message_id": message["id"]}
    event = await watcher.expect("MessageDeleted", timeout=TIMEOUT)
    assert set(event) == {"type", "conversation_id", "message_id", "version", "deleted_at",
                          "deleted_by"}
    assert event["conversation_id"] == room["id"]
    assert event["message_id"] == message["id"]
    assert event["version"] > message["version"]
    assert TIME.match(event["deleted_at"])
    assert event["deleted_by"] == bob.id
    assert "secret" not in str(event)


async def test_deleted_messages_are_tombstones_in_history(server: RunningServer) -> None:
    """History over the socket and over REST keeps the row but shows nothing of it."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    kept = await send(client, room["id"], "kept")
    gone = await send(client, room["id"], "secret", attachments=[attachment()])
    await client.request("DeleteMessage", message_id=gone["id"])
    for history in (await all_messages(client, room["id"]),
                    await rest_messages(server, alice, room["id"])):
        assert [m["id"] for m in history] == [kept["id"], gone["id"]]
        assert history[0] == kept
        assert_tombstone(history[1])
        assert history[1]["seq"] == gone["seq"]
        assert "secret" not in str(history)


async def test_a_retry_of_a_deleted_message_confirms_a_tombstone(server: RunningServer) -> None:
    """Retrying a send whose message was deleted returns the tombstone, not the content."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    message = await send(client, room["id"], "oops", client_message_id="c-del",
                         attachments=[attachment()])
    await client.request("DeleteMessage", message_id=message["id"])
    retried = await send(client, room["id"], "oops", client_message_id="c-del",
                         attachments=[attachment()])
    assert retried["id"] == message["id"]
    assert_tombstone(retried)


async def test_a_last_message_that_was_deleted_is_a_tombstone_in_the_list(
        server: RunningServer) -> None:
    """The conversation list's `last_message` never shows deleted content."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    message = await send(client, room["id"], "secret")
    await client.request("DeleteMessage", message_id=message["id"])
    async with server.http(alice) as http:
        listed = (await http.get("/api/v1/conversations")).json()["conversations"]
    last = next(c for c in listed if c["id"] == room["id"])["last_message"]
    assert last["id"] == message["id"]
    assert_tombstone(last)


async def test_deleting_twice_confirms_and_broadcasts_once(server: RunningServer) -> None:
    """A repeated delete is confirmed again but announces nothing new."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    message = await send(client, room["id"], "x")
    for request_id in ("d2", "d3"):
        reply = await client.request("DeleteMessage", message_id=message["id"],
                                     request_id=request_id)
        assert reply["type"] == "ActionConfirmed"
        assert reply["message_id"] == message["id"]
    await client.expect("MessageDeleted", timeout=TIMEOUT)
    await client.expect_none("MessageDeleted", within=0.5)


async def test_deleting_an_unknown_message_is_not_found(server: RunningServer) -> None:
    """An unknown `message_id` is NOT_FOUND."""
    client = await server.connect(server.user())
    reply = await client.request("DeleteMessage", message_id=MISSING, request_id="d4")
    assert_error(reply, "NOT_FOUND", field="$.message_id", request_id="d4")


# -- JoinConversation / LeaveConversation ---------------------------------------------------


async def test_joining_a_channel_makes_a_member(server: RunningServer) -> None:
    """A non-member joining a channel becomes `member` and the others hear `UserJoined`."""
    alice, bob = server.user("alice"), server.user("bob")
    room = await server.create_conversation(alice, kind="channel", name="general")
    watcher = await joined(server, alice, room["id"])
    newcomer = await server.connect(bob)
    reply = await newcomer.request("JoinConversation", conversation_id=room["id"],
                                   request_id="j1")
    assert reply["type"] == "ActionConfirmed"
    assert reply["action"] == "JoinConversation"
    assert reply["request_id"] == "j1"
    assert reply["role"] == "member"
    assert reply["conversation"]["id"] == room["id"]
    assert reply["conversation"]["role"] == "member"
    assert reply["conversation"]["member_count"] == 2
    event = await watcher.expect("UserJoined", timeout=TIMEOUT)
    assert event == {"type": "UserJoined", "conversation_id": room["id"], "user_id": bob.id,
                     "user_name": "bob"}
    async with server.http(alice) as http:
        members = (await http.get(f"/api/v1/conversations/{room['id']}/members")).json()
    assert {m["user_id"]: m["role"] for m in members["members"]} == {
        alice.id: "owner", bob.id: "member"}


async def test_joining_again_announces_nothing(server: RunningServer) -> None:
    """A member re-subscribing (a second tab, a reconnect) creates no `UserJoined`."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, members=[bob])
    watcher = await joined(server, alice, room["id"])
    first = await joined(server, bob, room["id"])
    reply = await first.request("JoinConversation", conversation_id=room["id"])
    assert reply["type"] == "ActionConfirmed"
    assert reply["role"] == "member"
    await watcher.expect_none("UserJoined", within=0.5)


async def test_a_joined_conversation_reports_the_callers_view(server: RunningServer) -> None:
    """The conversation in the join confirmation has the member's role, unread count and
    last message (§2: they appear where the caller is a member)."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, members=[bob])
    author = await joined(server, alice, room["id"])
    last = await send(author, room["id"], "unread")
    reader = await server.connect(bob)
    reply = await reader.request("JoinConversation", conversation_id=room["id"])
    conversation = reply["conversation"]
    assert conversation["role"] == "member"
    assert conversation["unread_count"] == 1
    assert conversation["last_message"] == last


async def test_joining_an_unknown_conversation_is_not_found(server: RunningServer) -> None:
    """An unknown `conversation_id` is NOT_FOUND."""
    client = await server.connect(server.user())
    reply = await client.request("JoinConversation", conversation_id=MISSING, request_id="j2")
    assert_error(reply, "NOT_FOUND", field="$.conversation_id", request_id="j2")


async def test_leaving_stops_broadcasts_but_keeps_membership(server: RunningServer) -> None:
    """`LeaveConversation` unsubscribes this connection only; the user stays a member."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, members=[bob])
    sender = await joined(server, alice, room["id"])
    leaving = await joined(server, bob, room["id"])
    staying = await joined(server, bob, room["id"])
    reply = await leaving.request("LeaveConversation", conversation_id=room["id"],
                                  request_id="l1")
    assert reply == {"type": "ActionConfirmed", "action": "LeaveConversation",
                     "request_id": "l1"}
    await send(sender, room["id"], "after leave")
    await staying.expect("NewMessage", timeout=TIMEOUT)
    await leaving.expect_none("NewMessage", within=0.5)
    assert (await leaving.request("FetchHistory", conversation_id=room["id"]))["type"] == \
        "HistoryChunk"


async def test_leaving_twice_is_confirmed(server: RunningServer) -> None:
    """Leaving a conversation the connection is not subscribed to is a harmless no-op."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await server.connect(alice)
    for _ in range(2):
        reply = await client.request("LeaveConversation", conversation_id=room["id"])
        assert reply["type"] == "ActionConfirmed"


async def test_leaving_an_unknown_conversation_is_not_found(server: RunningServer) -> None:
    """An unknown `conversation_id` is NOT_FOUND, for Leave as for every other message."""
    client = await server.connect(server.user())
    reply = await client.request("LeaveConversation", conversation_id=MISSING,
                                 request_id="l2")
    assert_error(reply, "NOT_FOUND", field="$.conversation_id", request_id="l2")


# -- Ping -----------------------------------------------------------------------------------


@pytest.mark.parametrize("timestamp", [1732560058123, 17.5, "t-1", None])
async def test_ping_is_answered_with_pong(server: RunningServer, timestamp: Any) -> None:
    """`Pong` echoes the timestamp (any JSON scalar) and tells the server time."""
    client = await server.connect(server.user())
    fields = {} if timestamp is None else {"timestamp": timestamp}
    reply = await client.request("Ping", request_id="ping", **fields)
    assert reply["type"] == "Pong"
    assert reply["request_id"] == "ping"
    assert reply["timestamp"] == timestamp
    assert TIME.match(reply["server_time"])


async def test_a_join_racing_a_close_leaves_no_subscription(server: RunningServer) -> None:
    """A JoinConversation still in flight when its connection closes subscribes nothing: no
    dead connection (nor its bus topic) stays behind in the hub."""
    alice = server.user()
    room = await server.create_conversation(alice)
    for _ in range(5):
        client = await server.connect(alice)
        await client.send("JoinConversation", conversation_id=room["id"])
        await client.socket.close()  # without waiting for the confirmation
    hub = server.internals.hub
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while hub.connections_of(alice.id):
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # the in-flight joins finish after the connections are gone
    assert room["id"] not in hub._by_conversation


async def test_a_tombstone_drops_its_reactions(server: RunningServer) -> None:
    """A deleted message that had reactions shows `reactions: []` in history and in a
    retried send's confirmation."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, members=[bob])
    author = await joined(server, alice, room["id"])
    reactor = await joined(server, bob, room["id"])
    message = await send(author, room["id"], "react to me", client_message_id="c-react")
    reacted = await reactor.request("AddReaction", message_id=message["id"], emoji="👍")
    assert reacted["type"] == "ActionConfirmed", reacted
    live = (await all_messages(author, room["id"]))[0]
    assert [r["emoji"] for r in live["reactions"]] == ["👍"]
    await author.request("DeleteMessage", message_id=message["id"])
    assert_tombstone((await all_messages(author, room["id"]))[0])
    retried = await send(author, room["id"], "react to me", client_message_id="c-react")
    assert_tombstone(retried)
