"""AddReaction and RemoveReaction: one reaction per (message, user, emoji), aggregated on the
message, each change a new version; repeats are silent no-ops (PROTOCOL.md §2, §3)."""

from __future__ import annotations

from typing import Any

import pytest

from hubbub.domain.reactions import MAX_EMOJI_PER_MESSAGE, MAX_REACTIONS_PER_USER
from tests.support.client import ChatClient
from tests.support.flows import MISSING, TIMEOUT, all_messages, assert_error, joined, send
from tests.support.server import RunningServer, User

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def react(client: ChatClient, message_id: str, emoji: str = "👍",
                type_: str = "AddReaction") -> dict[str, Any]:
    reply = await client.request(type_, message_id=message_id, emoji=emoji, timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    assert reply["action"] == type_
    return reply


async def conversation_version(server: RunningServer, user: User, room: str) -> int:
    async with server.http(user) as http:
        response = await http.get(f"/api/v1/conversations/{room}")
    assert response.status_code == 200, response.text
    return int(response.json()["version"])


async def setup(server: RunningServer) -> tuple[str, User, ChatClient, User, ChatClient,
                                                  dict[str, Any]]:
    """A channel with alice and bob subscribed and one message of alice's."""
    alice, bob = server.user("alice"), server.user("bob")
    room = (await server.create_conversation(alice, members=[bob]))["id"]
    a, b = await joined(server, alice, room), await joined(server, bob, room)
    message = await send(a, room, "react to me")
    return room, alice, a, bob, b, message


async def test_a_reaction_is_broadcast_with_the_next_version(server: RunningServer) -> None:
    """`ReactionAdded` reaches every subscriber, the reactor included, with a new version."""
    room, _, a, _, b, message = await setup(server)
    await react(b, message["id"], "👍")
    for client in (a, b):
        event = await client.expect("ReactionAdded", timeout=TIMEOUT)
        assert event == {"type": "ReactionAdded", "conversation_id": room,
                         "message_id": message["id"], "version": message["version"] + 1,
                         "user_id": b.user_id, "emoji": "👍"}


async def test_reactions_are_aggregated_on_the_message(server: RunningServer) -> None:
    """The message object lists each emoji once with its count and reactors."""
    room, _, a, _, b, message = await setup(server)
    await react(a, message["id"], "👍")
    await react(b, message["id"], "👍")
    await react(b, message["id"], "🎉")
    [stored] = await all_messages(a, room)
    assert stored["reactions"] == [
        {"emoji": "👍", "count": 2, "user_ids": [a.user_id, b.user_id]},
        {"emoji": "🎉", "count": 1, "user_ids": [b.user_id]},
    ]
    assert stored["version"] == message["version"] + 3


async def test_adding_twice_is_a_silent_no_op(server: RunningServer) -> None:
    """A second identical reaction is confirmed, broadcasts nothing, bumps no version."""
    room, alice, a, _, b, message = await setup(server)
    await react(a, message["id"], "👍")
    await b.expect("ReactionAdded", timeout=TIMEOUT)
    before = await conversation_version(server, alice, room)
    await react(a, message["id"], "👍")
    await b.expect_none("ReactionAdded")
    assert await conversation_version(server, alice, room) == before
    [stored] = await all_messages(a, room)
    assert stored["reactions"] == [{"emoji": "👍", "count": 1, "user_ids": [a.user_id]}]
    assert stored["version"] == before


async def test_removing_a_reaction_is_broadcast(server: RunningServer) -> None:
    """`ReactionRemoved` carries the next version and the reaction disappears."""
    room, _, a, _, b, message = await setup(server)
    await react(a, message["id"], "👍")
    added = await b.expect("ReactionAdded", timeout=TIMEOUT)
    await react(a, message["id"], "👍", "RemoveReaction")
    removed = await b.expect("ReactionRemoved", timeout=TIMEOUT)
    assert removed == {"type": "ReactionRemoved", "conversation_id": room,
                       "message_id": message["id"], "version": added["version"] + 1,
                       "user_id": a.user_id, "emoji": "👍"}
    [stored] = await all_messages(a, room)
    assert stored["reactions"] == []
    assert stored["version"] == removed["version"]


async def test_removing_an_absent_reaction_is_a_silent_no_op(server: RunningServer) -> None:
    """Removing what is not there is confirmed, broadcasts nothing, bumps no version."""
    room, alice, a, _, b, message = await setup(server)
    await react(b, message["id"], "👍")
    await a.expect("ReactionAdded", timeout=TIMEOUT)
    before = await conversation_version(server, alice, room)
    await react(a, message["id"], "👍", "RemoveReaction")
    await react(b, message["id"], "🎉", "RemoveReaction")
    await a.expect_none("ReactionRemoved")
    assert await conversation_version(server, alice, room) == before
    [stored] = await all_messages(a, room)
    assert stored["reactions"] == [{"emoji": "👍", "count": 1, "user_ids": [b.user_id]}]


async def test_one_user_may_use_several_emojis(server: RunningServer) -> None:
    """Reactions are unique per (message, user, emoji), not per (message, user)."""
    room, _, a, _, _, message = await setup(server)
    for emoji in ("👍", "❤️", "😂"):
        await react(a, message["id"], emoji)
    [stored] = await all_messages(a, room)
    assert [r["emoji"] for r in stored["reactions"]] == ["👍", "❤️", "😂"]


@pytest.mark.parametrize("action", ["AddReaction", "RemoveReaction"])
async def test_reacting_to_a_deleted_message_is_a_conflict(server: RunningServer,
                                                           action: str) -> None:
    """A deleted message takes no reaction changes."""
    _, _, a, _, b, message = await setup(server)
    await react(b, message["id"], "👍")
    reply = await a.request("DeleteMessage", message_id=message["id"], timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    reply = await b.request(action, message_id=message["id"], emoji="👍", request_id="dead",
                            timeout=TIMEOUT)
    assert_error(reply, "CONFLICT", request_id="dead")


async def test_deleting_a_message_clears_its_reactions(server: RunningServer) -> None:
    """A tombstone shows no reactions (§2)."""
    room, _, a, _, b, message = await setup(server)
    await react(b, message["id"], "👍")
    reply = await a.request("DeleteMessage", message_id=message["id"], timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    [stored] = await all_messages(a, room)
    assert stored["reactions"] == []


async def test_an_edit_keeps_the_reactions(server: RunningServer) -> None:
    """`MessageEdited` carries the reactions the message has."""
    _, _, a, _, b, message = await setup(server)
    await react(b, message["id"], "👍")
    reply = await a.request("EditMessage", message_id=message["id"], content="changed",
                            timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    edited = await b.expect("MessageEdited", timeout=TIMEOUT)
    assert edited["message"]["reactions"] == [
        {"emoji": "👍", "count": 1, "user_ids": [b.user_id]}]


@pytest.mark.parametrize("action", ["AddReaction", "RemoveReaction"])
async def test_reacting_to_an_unknown_message_is_not_found(server: RunningServer,
                                                           action: str) -> None:
    """An unknown message id is NOT_FOUND."""
    client = await server.connect(server.user())
    reply = await client.request(action, message_id=MISSING, emoji="👍", request_id="r404")
    assert_error(reply, "NOT_FOUND", field="$.message_id", request_id="r404")


async def test_an_outsider_cannot_react_in_a_private_group(server: RunningServer) -> None:
    """Reacting needs `send` in the message's conversation."""
    alice = server.user()
    group = (await server.create_conversation(alice, kind="group"))["id"]
    message = await send(await joined(server, alice, group), group, "private")
    outsider = await server.connect(server.user())
    reply = await outsider.request("AddReaction", message_id=message["id"], emoji="👍",
                                   request_id="nope")
    assert_error(reply, "FORBIDDEN", request_id="nope")


async def test_a_non_member_cannot_react_in_a_public_channel(server: RunningServer) -> None:
    """Reading a channel is open to all; reacting needs membership."""
    alice = server.user()
    room = (await server.create_conversation(alice))["id"]
    message = await send(await joined(server, alice, room), room, "public")
    stranger = await server.connect(server.user())
    reply = await stranger.request("AddReaction", message_id=message["id"], emoji="👍",
                                   request_id="stranger")
    assert_error(reply, "FORBIDDEN", request_id="stranger")


async def test_a_read_only_member_cannot_react(server: RunningServer) -> None:
    """`read_only` lacks `send`, so reactions are FORBIDDEN."""
    alice, reader = server.user(), server.user()
    room = (await server.create_conversation(alice, members=[reader]))["id"]
    message = await send(await joined(server, alice, room), room, "announcement")
    async with server.http(alice) as http:
        response = await http.put(f"/api/v1/conversations/{room}/members/{reader.id}",
                                  json={"role": "read_only"})
    assert response.status_code == 200, response.text
    client = await server.connect(reader)
    reply = await client.request("AddReaction", message_id=message["id"], emoji="👍",
                                 request_id="ro")
    assert_error(reply, "FORBIDDEN", request_id="ro")


@pytest.mark.parametrize(("emoji", "field"), [
    ("", "$.emoji"), ("x" * 33, "$.emoji"), ("   ", "$.emoji"), (5, "$.emoji"),
], ids=["empty", "too_long", "blank", "not_a_string"])
async def test_bad_emojis_are_refused(server: RunningServer, emoji: Any, field: str) -> None:
    """Emojis are 1–32 characters and not blank; BAD_REQUEST names the field."""
    _, _, a, _, _, message = await setup(server)
    reply = await a.request("AddReaction", message_id=message["id"], emoji=emoji,
                            request_id="emoji")
    assert_error(reply, "BAD_REQUEST", field=field, request_id="emoji")


async def test_the_longest_emoji_is_accepted(server: RunningServer) -> None:
    """32 characters (a long ZWJ sequence or a short code) are within the limit."""
    room, _, a, _, _, message = await setup(server)
    await react(a, message["id"], ":" + "y" * 30 + ":")
    [stored] = await all_messages(a, room)
    assert stored["reactions"][0]["emoji"] == ":" + "y" * 30 + ":"


# -- caps (docs/DECISIONS.md, "Reactions") --------------------------------------------------


async def test_a_message_takes_a_bounded_number_of_different_emoji(
        server: RunningServer) -> None:
    """Once a message carries `max_reaction_emoji_per_message` different emoji, a new one is
    CONFLICT naming the limit: nothing stored, broadcast or versioned. An emoji already
    there may still be added."""
    room, alice, a, _, b, message = await setup(server)
    cap = a.connected["limits"]["max_reaction_emoji_per_message"]
    assert cap == MAX_EMOJI_PER_MESSAGE
    per_user = a.connected["limits"]["max_reactions_per_user_per_message"]
    reactors = [server.user(f"r{n}") for n in range(-(-cap // per_user))]
    clients = [await joined(server, user, room) for user in reactors]
    for n in range(cap):
        await react(clients[n // per_user], message["id"], f"e{n}")
    for _ in range(cap):
        await b.expect("ReactionAdded", timeout=TIMEOUT)
    before = await conversation_version(server, alice, room)
    reply = await a.request("AddReaction", message_id=message["id"], emoji="one too many",
                            request_id="cap")
    assert_error(reply, "CONFLICT", field="$.emoji", request_id="cap")
    assert f"at most {cap} different emoji" in reply["message"]
    await b.expect_none("ReactionAdded")
    assert await conversation_version(server, alice, room) == before
    [stored] = await all_messages(a, room)
    assert [r["emoji"] for r in stored["reactions"]] == [f"e{n}" for n in range(cap)]
    await react(a, message["id"], "e0")
    assert await conversation_version(server, alice, room) == before + 1


async def test_one_user_adds_a_bounded_number_of_reactions_to_a_message(
        server: RunningServer) -> None:
    """Past `max_reactions_per_user_per_message` the user's next reaction is CONFLICT and
    stores nothing; other users still react."""
    room, alice, a, _, b, message = await setup(server)
    per_user = b.connected["limits"]["max_reactions_per_user_per_message"]
    assert per_user == MAX_REACTIONS_PER_USER
    for n in range(per_user):
        await react(b, message["id"], f"b{n}")
    before = await conversation_version(server, alice, room)
    reply = await b.request("AddReaction", message_id=message["id"], emoji="more",
                            request_id="mine")
    assert_error(reply, "CONFLICT", field="$.emoji", request_id="mine")
    assert f"at most {per_user} reactions per user" in reply["message"]
    assert await conversation_version(server, alice, room) == before
    [stored] = await all_messages(a, room)
    assert len(stored["reactions"]) == per_user
    assert "more" not in {r["emoji"] for r in stored["reactions"]}
    await react(a, message["id"], "more")
