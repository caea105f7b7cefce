"""SearchMessages in `words` mode (PROTOCOL.md §3): full-text, ranked, paged, highlighted,
and scoped inside the query, on each database's index (migration 0009)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_search import ban, marker, room_with
from tests.support.client import ChatClient
from tests.support.flows import TIMEOUT, assert_error
from tests.support.server import RunningServer

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def answer(client: ChatClient, query: str, **fields: Any) -> dict[str, Any]:
    reply = await client.request("SearchMessages", query=query, timeout=TIMEOUT, **fields)
    assert reply["type"] == "SearchResults", reply
    assert reply["truncated"] is False, reply
    assert [h["message_id"] for h in reply["highlights"]] == [
        m["id"] for m in reply["messages"]]
    return reply


async def ids(client: ChatClient, query: str, **fields: Any) -> list[str]:
    reply = await answer(client, query, mode="words", **fields)
    assert reply["mode"] == "words", reply
    return [m["id"] for m in reply["messages"]]


async def test_the_better_match_comes_first(server: RunningServer) -> None:
    """Relevance before recency: the message that is mostly the word ranks above a newer
    one that mentions it once among many words, in one conversation and across them."""
    tag = marker()
    room, client, sent = await room_with(server, server.user(), [
        f"{tag} {tag} {tag}",
        f"{tag} is mentioned here once among quite a lot of other words today",
        "no match at all"])
    assert await ids(client, tag, conversation_id=room) == [sent[0]["id"], sent[1]["id"]]
    assert await ids(client, tag) == [sent[0]["id"], sent[1]["id"]]


async def test_every_word_must_begin_a_word_of_the_message(server: RunningServer) -> None:
    """Each query word matches a word or a word's beginning, in any order and case."""
    tag = marker()
    room, client, sent = await room_with(server, server.user(), [
        f"Deploying the {tag} release", f"release notes {tag}", f"the {tag}deploy"])
    assert await ids(client, f"RELEASE deploy {tag}", conversation_id=room) == [
        sent[0]["id"]]
    assert set(await ids(client, f"{tag} rel", conversation_id=room)) == {
        sent[0]["id"], sent[1]["id"]}
    # A word's inside is not its beginning (the substring mode finds that).
    assert await ids(client, "ploying", conversation_id=room) == []


async def test_pages_neither_repeat_nor_skip(server: RunningServer) -> None:
    """Following `next_cursor` yields every match once, in the order of one big page;
    the last page has no cursor."""
    tag = marker()
    contents = [" ".join([tag] * (1 + n % 3) + ["filler"] * (n % 4)) for n in range(11)]
    room, client, sent = await room_with(server, server.user(), contents)
    whole = await ids(client, tag, conversation_id=room)
    assert sorted(whole) == sorted(m["id"] for m in sent)
    for scope in ({"conversation_id": room}, {}):
        paged: list[str] = []
        cursor = None
        for _ in range(len(sent)):
            reply = await answer(client, tag, mode="words", limit=3, cursor=cursor, **scope)
            paged += [m["id"] for m in reply["messages"]]
            cursor = reply["next_cursor"]
            if cursor is None:
                break
        assert paged == whole, scope


async def test_highlights_count_code_points(server: RunningServer) -> None:
    """Highlight ranges are (start, length) in code points: an emoji counts one, letters
    outside ASCII fold case; in both modes."""
    tag = marker()
    content = f"👋 Grüße aus Köln, {tag}! ГРÜßE? grüßli und GRÜSSE 💬 grüße"
    room, client, _ = await room_with(server, server.user(), [content])
    reply = await answer(client, f"grüße {tag}", mode="words", conversation_id=room)
    ranges = [(r["start"], r["length"]) for r in reply["highlights"][0]["ranges"]]
    expected = [content.index("Grüße"), content.index(tag), content.rindex("grüße")]
    assert ranges == [(expected[0], 5), (expected[1], len(tag)), (expected[2], 5)]
    assert [content[s:s + n].lower() for s, n in ranges] == ["grüße", tag, "grüße"]
    reply = await answer(client, "ÜSSE 💬", mode="substring", conversation_id=room)
    assert reply["mode"] == "substring"
    [[start, length]] = [(r["start"], r["length"]) for r in reply["highlights"][0]["ranges"]]
    assert content[start:start + length] == "ÜSSE 💬"


async def test_edits_and_deletes_reach_the_index(server: RunningServer) -> None:
    """An edited message is found by its new words only, a deleted one not at all."""
    old, new, gone = marker(), marker(), marker()
    room, client, sent = await room_with(server, server.user(),
                                         [f"draft {old}", f"oops {gone}"])
    edited = await client.request("EditMessage", message_id=sent[0]["id"],
                                  content=f"final {new}", timeout=TIMEOUT)
    assert edited["type"] == "ActionConfirmed", edited
    deleted = await client.request("DeleteMessage", message_id=sent[1]["id"],
                                   timeout=TIMEOUT)
    assert deleted["type"] == "ActionConfirmed", deleted
    assert await ids(client, old) == []
    assert await ids(client, f"draft {new}") == []
    assert await ids(client, gone) == []
    assert await ids(client, f"FINAL {new}") == [sent[0]["id"]]
    assert await ids(client, gone, conversation_id=room) == []


async def test_no_conversation_the_searcher_cannot_read(server: RunningServer) -> None:
    """Never a member, banned, or left: none of those conversations' messages is found by
    a search across conversations; the one still readable is."""
    tag = marker()
    owner, user = server.user("owner"), server.user("user")
    private, _, _ = await room_with(server, owner, [f"private {tag}"], kind="group")
    banned, _, _ = await room_with(server, owner, [f"banned {tag}"], members=[user])
    left, _, _ = await room_with(server, owner, [f"left {tag}"], kind="group",
                                 members=[user])
    _, _, in_kept = await room_with(server, owner, [f"kept {tag}"], kind="group",
                                    members=[user])
    client = await server.connect(user)
    assert len(await ids(client, tag)) == 3
    await ban(server, owner, banned, user)
    async with server.http(user) as http:
        response = await http.delete(f"/api/v1/conversations/{left}/members/{user.id}")
        assert response.status_code in (200, 204), response.text
    assert await ids(client, tag) == [in_kept[0]["id"]]
    for room in (private, banned, left):
        reply = await client.request("SearchMessages", query=tag, mode="words",
                                     conversation_id=room, request_id="no")
        assert_error(reply, "FORBIDDEN", request_id="no")


async def test_auto_picks_words_for_words_and_substring_for_the_rest(
        server: RunningServer) -> None:
    """`auto`: a query of words of three characters or more runs `words`; a shorter one
    or one with punctuation runs `substring` (PROTOCOL.md §3)."""
    tag = marker()
    room, client, _ = await room_with(server, server.user(), [f"snake_case {tag}!"])
    for query, mode in ((tag, "words"), (f"Snake {tag}", "words"), ("ke", "substring"),
                        ("e_c", "substring"), (f"{tag}!", "substring")):
        reply = await answer(client, query, conversation_id=room)
        assert (reply["mode"], len(reply["messages"])) == (mode, 1), query


async def test_substring_pages_follow_the_cursor(server: RunningServer) -> None:
    """The substring mode pages newest first by its own cursor."""
    tag = marker()
    room, client, sent = await room_with(server, server.user(),
                                         [f"x{tag}y {n}" for n in range(5)])
    first = await answer(client, tag, mode="substring", conversation_id=room, limit=3)
    rest = await answer(client, tag, mode="substring", conversation_id=room, limit=3,
                        cursor=first["next_cursor"])
    assert [m["id"] for m in first["messages"] + rest["messages"]] == [
        m["id"] for m in reversed(sent)]
    assert rest["next_cursor"] is None


@pytest.mark.parametrize(("fields", "field"), [
    ({"query": "hello", "cursor": "garbage"}, "$.cursor"),
    ({"query": "hello", "mode": "substring", "cursor": "w.WzEsMiwiMyJd"}, "$.cursor"),
    ({"query": "hello", "cursor": ""}, "$.cursor"),
    ({"query": "hello", "mode": "fuzzy"}, "$.mode"),
    ({"query": "%%%", "mode": "words"}, "$.query"),
], ids=["not_a_cursor", "other_modes_cursor", "empty_cursor", "unknown_mode", "no_word"])
async def test_bad_word_searches_are_refused(server: RunningServer, fields: dict[str, Any],
                                             field: str) -> None:
    """A cursor this search did not hand out, an unknown mode, or a words search without
    a word: BAD_REQUEST naming the field, and the connection goes on."""
    client = await server.connect(server.user())
    reply = await client.request("SearchMessages", request_id="bad", **fields)
    assert_error(reply, "BAD_REQUEST", field=field, request_id="bad")
    assert (await client.request("Ping", timeout=TIMEOUT))["type"] == "Pong"
