"""SearchMessages: literal, case-insensitive substring search that never leaks a
conversation the searcher cannot read (PROTOCOL.md §3, §5)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support.client import ChatClient
from tests.support.flows import MISSING, TIMEOUT, assert_error, joined, send
from tests.support.server import RunningServer, User

pytestmark = pytest.mark.asyncio(loop_scope="session")


def marker() -> str:
    """A word no other test's message contains, so a search sees only this test's
    messages (a channel searched by id holds whatever other tests sent there)."""
    return "m" + uuid.uuid4().hex[:12]


async def search(client: ChatClient, query: str, **fields: Any) -> list[dict[str, Any]]:
    """The messages of a `SearchResults` answer (asserting the answer's shape: these small
    searches are never cut short by a bound)."""
    reply = await client.request("SearchMessages", query=query, timeout=TIMEOUT, **fields)
    assert reply["type"] == "SearchResults", reply
    assert reply["query"] == query
    assert reply["conversation_id"] == fields.get("conversation_id")
    assert reply["truncated"] is False, reply
    found: list[dict[str, Any]] = reply["messages"]
    return found


async def room_with(server: RunningServer, owner: User, contents: list[str],
                    kind: str = "channel", members: list[User] | None = None
                    ) -> tuple[str, ChatClient, list[dict[str, Any]]]:
    """A conversation holding `contents` (sent in order by `owner`)."""
    room = await server.create_conversation(owner, kind=kind, members=members)
    client = await joined(server, owner, room["id"])
    sent = [await send(client, room["id"], content) for content in contents]
    return room["id"], client, sent


async def ban(server: RunningServer, moderator: User, room: str, user: User) -> None:
    async with server.http(moderator) as http:
        response = await http.put(f"/api/v1/conversations/{room}/members/{user.id}",
                                  json={"role": "banned"})
    assert response.status_code == 200, response.text


async def test_search_ignores_case(server: RunningServer) -> None:
    """A query matches content whatever the case of either."""
    tag = marker()
    room, client, sent = await room_with(server, server.user(),
                                         [f"Hello WORLD {tag}", f"goodbye {tag}"])
    found = await search(client, f"hello world {tag.upper()}", conversation_id=room)
    assert [m["id"] for m in found] == [sent[0]["id"]]


async def test_search_folds_unicode_case(server: RunningServer) -> None:
    """Case folding is not limited to ASCII (on SQLite too)."""
    tag = marker()
    room, client, sent = await room_with(server, server.user(),
                                         [f"ÄRGER im BÜRO {tag}", f"ärgerlich {tag}", "nein"])
    found = await search(client, "ärger im büro", conversation_id=room)
    assert [m["id"] for m in found] == [sent[0]["id"]]
    assert {m["id"] for m in await search(client, "ÄRGER", conversation_id=room)} == {
        sent[0]["id"], sent[1]["id"]}


async def test_percent_matches_only_a_literal_percent(server: RunningServer) -> None:
    """`%` is not a wildcard: only messages containing a percent sign match."""
    room, client, sent = await room_with(server, server.user(),
                                         ["100% sure", "100 sure", "a%b", "plain"])
    found = await search(client, "%", conversation_id=room)
    assert {m["id"] for m in found} == {sent[0]["id"], sent[2]["id"]}
    assert [m["id"] for m in await search(client, "100%", conversation_id=room)] == [
        sent[0]["id"]]


async def test_underscore_matches_only_a_literal_underscore(server: RunningServer) -> None:
    """`_` is not the any-character wildcard."""
    room, client, sent = await room_with(server, server.user(),
                                         ["snake_case", "snakeXcase", "snake case"])
    found = await search(client, "e_c", conversation_id=room)
    assert [m["id"] for m in found] == [sent[0]["id"]]


async def test_backslash_matches_only_a_literal_backslash(server: RunningServer) -> None:
    """`\\` is neither dropped nor taken as an escape of the next character."""
    room, client, sent = await room_with(server, server.user(),
                                         ["C:\\temp", "C:temp", "100\\%", "100%"])
    assert {m["id"] for m in await search(client, "\\", conversation_id=room)} == {
        sent[0]["id"], sent[2]["id"]}
    assert [m["id"] for m in await search(client, ":\\t", conversation_id=room)] == [
        sent[0]["id"]]
    assert [m["id"] for m in await search(client, "\\%", conversation_id=room)] == [
        sent[2]["id"]]


async def test_deleted_messages_never_match(server: RunningServer) -> None:
    """A deleted message is not found, although its row keeps the content."""
    tag = marker()
    room, client, sent = await room_with(server, server.user(),
                                         [f"keep {tag}", f"drop {tag}"])
    reply = await client.request("DeleteMessage", message_id=sent[1]["id"], timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    assert [m["id"] for m in await search(client, tag, conversation_id=room)] == [
        sent[0]["id"]]
    assert [m["id"] for m in await search(client, tag)] == [sent[0]["id"]]


async def test_an_edited_message_matches_its_new_content_only(server: RunningServer) -> None:
    """Search sees the current content, not the edit history."""
    old, new = marker(), marker()
    room, client, sent = await room_with(server, server.user(), [f"before {old}"])
    reply = await client.request("EditMessage", message_id=sent[0]["id"],
                                 content=f"after {new}", timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    assert await search(client, old, conversation_id=room) == []
    found = await search(client, new, conversation_id=room)
    assert [(m["id"], m["content"]) for m in found] == [(sent[0]["id"], f"after {new}")]


async def test_results_are_newest_first_and_limited(server: RunningServer) -> None:
    """Results come newest first, at most `limit` of them."""
    tag = marker()
    room, client, sent = await room_with(server, server.user(),
                                         [f"{tag} {n}" for n in range(5)])
    found = await search(client, tag, conversation_id=room, limit=3)
    assert [m["id"] for m in found] == [m["id"] for m in reversed(sent)][:3]
    assert len(await search(client, tag, conversation_id=room)) == 5


async def test_results_are_full_message_objects_with_reactions(server: RunningServer) -> None:
    """A result is the §2 message object, reactions aggregated."""
    tag = marker()
    room, client, sent = await room_with(server, server.user(), [f"react {tag}"])
    reply = await client.request("AddReaction", message_id=sent[0]["id"], emoji="👍",
                                 timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    [found] = await search(client, tag, conversation_id=room)
    assert found["conversation_id"] == room
    assert found["sender_id"] == client.user_id
    assert found["reactions"] == [{"emoji": "👍", "count": 1, "user_ids": [client.user_id]}]


async def test_search_without_a_conversation_covers_the_users_memberships(
        server: RunningServer) -> None:
    """Omitting `conversation_id` searches the user's groups and joined channels; a
    channel the user never joined is searched by its id, or once joined."""
    tag = marker()
    alice, bob = server.user("alice"), server.user("bob")
    group, _, in_group = await room_with(server, alice, [f"group {tag}"], kind="group",
                                         members=[bob])
    channel, _, in_channel = await room_with(server, alice, [f"channel {tag}"])
    bob_client = await server.connect(bob)
    assert [m["id"] for m in await search(bob_client, tag)] == [in_group[0]["id"]]
    assert [m["id"] for m in await search(bob_client, tag, conversation_id=channel)] == [
        in_channel[0]["id"]]
    await joined(server, bob, channel)
    found = await search(bob_client, tag)
    assert [m["id"] for m in found] == [in_channel[0]["id"], in_group[0]["id"]]
    assert {m["conversation_id"] for m in found} == {group, channel}


async def test_an_outsider_finds_nothing_in_a_private_group(server: RunningServer) -> None:
    """A private group's messages never reach a non-member's search, by any route."""
    tag = marker()
    alice, eve = server.user("alice"), server.user("eve")
    group, alice_client, _ = await room_with(server, alice, [f"secret {tag}", "secret"],
                                             kind="group")
    assert len(await search(alice_client, tag)) == 1
    eve_client = await server.connect(eve)
    assert await search(eve_client, tag) == []
    # A word other tests' public channels may contain: whatever matches, none is the group's.
    assert all(m["conversation_id"] != group
               for m in await search(eve_client, "secret", limit=100))
    reply = await eve_client.request("SearchMessages", query=tag, conversation_id=group,
                                     request_id="peek")
    assert_error(reply, "FORBIDDEN", request_id="peek")


async def test_a_banned_member_finds_nothing_in_that_channel(server: RunningServer) -> None:
    """Banning takes a public channel out of the banned user's search."""
    tag = marker()
    owner, mallory = server.user("owner"), server.user("mallory")
    channel, _, _ = await room_with(server, owner, [f"rules {tag}"], members=[mallory])
    mallory_client = await server.connect(mallory)
    assert len(await search(mallory_client, tag)) == 1
    await ban(server, owner, channel, mallory)
    assert await search(mallory_client, tag) == []
    reply = await mallory_client.request("SearchMessages", query=tag, conversation_id=channel,
                                         request_id="banned")
    assert_error(reply, "FORBIDDEN", request_id="banned")


async def test_leaving_takes_a_conversation_out_of_search(server: RunningServer) -> None:
    """A user who left a group finds nothing of it any more, by any route; a channel left
    drops out of the search across conversations but stays searchable by id (§5)."""
    tag = marker()
    owner, leaver = server.user("owner"), server.user("leaver")
    group, _, _ = await room_with(server, owner, [f"group {tag}"], kind="group",
                                  members=[leaver])
    channel, _, in_channel = await room_with(server, owner, [f"channel {tag}"],
                                             members=[leaver])
    leaver_client = await server.connect(leaver)
    assert len(await search(leaver_client, tag)) == 2
    async with server.http(leaver) as http:
        for room in (group, channel):
            response = await http.delete(f"/api/v1/conversations/{room}/members/{leaver.id}")
            assert response.status_code in (200, 204), response.text
    assert await search(leaver_client, tag) == []
    reply = await leaver_client.request("SearchMessages", query=tag, conversation_id=group,
                                        request_id="left")
    assert_error(reply, "FORBIDDEN", request_id="left")
    assert [m["id"] for m in await search(leaver_client, tag, conversation_id=channel)] == [
        in_channel[0]["id"]]


async def test_a_public_channel_is_searchable_without_joining(server: RunningServer) -> None:
    """Anyone may read a channel (§5), so anyone may search it by id."""
    tag = marker()
    channel, _, sent = await room_with(server, server.user(), [f"open {tag}"])
    stranger = await server.connect(server.user())
    found = await search(stranger, tag, conversation_id=channel)
    assert [m["id"] for m in found] == [sent[0]["id"]]


async def test_an_unknown_conversation_is_not_found(server: RunningServer) -> None:
    """Searching a conversation that does not exist is NOT_FOUND."""
    client = await server.connect(server.user())
    reply = await client.request("SearchMessages", query="x", conversation_id=MISSING,
                                 request_id="s-404")
    assert_error(reply, "NOT_FOUND", field="$.conversation_id", request_id="s-404")


@pytest.mark.parametrize(("fields", "field"), [
    ({"query": ""}, "$.query"),
    ({"query": "q" * 201}, "$.query"),
    ({}, "query"),
    ({"query": "x", "limit": 0}, "$.limit"),
    ({"query": "x", "limit": 101}, "$.limit"),
    ({"query": "x", "conversation_id": "not-a-uuid"}, "$.conversation_id"),
    ({"query": 5}, "$.query"),
], ids=["empty", "too_long", "missing", "limit_0", "limit_101", "bad_id", "not_a_string"])
async def test_bad_search_requests_are_refused(server: RunningServer, fields: dict[str, Any],
                                               field: str) -> None:
    """Out-of-range queries and limits get BAD_REQUEST naming the field."""
    client = await server.connect(server.user())
    reply = await client.request("SearchMessages", request_id="bad", **fields)
    assert reply["type"] == "Error", reply
    assert reply["code"] == "BAD_REQUEST"
    assert field in reply["message"]
    assert reply["request_id"] == "bad"
