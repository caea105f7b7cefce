"""FetchHistory and its REST twin: seq cursors, page sizes, and pages that never skip or
repeat (PROTOCOL.md §3, §7)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.client import ChatClient
from tests.support.flows import (
    MISSING,
    TIMEOUT,
    all_messages,
    assert_error,
    fetch,
    joined,
    rest_messages,
    send,
)
from tests.support.server import RunningServer

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def send_many(client: ChatClient, conversation_id: str, count: int,
                    prefix: str = "m") -> list[dict[str, Any]]:
    """Pipeline `count` messages on one connection; they are stored in sending order."""
    return list(await asyncio.gather(*(
        send(client, conversation_id, f"{prefix}{i}") for i in range(count)
    )))


async def test_paging_80_messages_never_skips_or_repeats(server: RunningServer) -> None:
    """Walking `next_before` back with limit 20 returns every message exactly once, each
    page ascending and older than the one before."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    sent = await send_many(client, room["id"], 80)
    assert [m["content"] for m in sorted(sent, key=lambda m: m["seq"])] == [
        f"m{i}" for i in range(80)]
    seen: list[dict[str, Any]] = []
    before: int | None = None
    pages = 0
    while True:
        fields: dict[str, Any] = {"limit": 20}
        if before is not None:
            fields["before"] = before
        page = await fetch(client, room["id"], **fields)
        pages += 1
        seqs = [m["seq"] for m in page["messages"]]
        assert seqs == sorted(seqs)
        assert len(set(seqs)) == len(seqs)
        if before is not None:
            assert all(seq < before for seq in seqs)
        assert page["next_before"] == seqs[0]
        seen = page["messages"] + seen
        if not page["has_more"]:
            break
        assert len(page["messages"]) == 20
        before = page["next_before"]
    assert pages == 4
    assert [m["id"] for m in seen] == [m["id"] for m in sorted(sent, key=lambda m: m["seq"])]


async def test_default_page_is_the_newest_50(server: RunningServer) -> None:
    """Without `limit`, a page holds the 50 newest messages and says more exist."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    sent = sorted(await send_many(client, room["id"], 76), key=lambda m: m["seq"])
    page = await fetch(client, room["id"])
    assert [m["id"] for m in page["messages"]] == [m["id"] for m in sent[-50:]]
    assert page["has_more"] is True
    assert page["next_before"] == sent[-50]["seq"]
    rest = await fetch(client, room["id"], before=page["next_before"])
    assert [m["id"] for m in rest["messages"]] == [m["id"] for m in sent[:26]]
    assert rest["has_more"] is False


async def test_limit_100_returns_at_most_100(server: RunningServer) -> None:
    """`limit` 100 (the maximum) returns a full page of 100 when there are more."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    await send_many(client, room["id"], 101)
    page = await fetch(client, room["id"], limit=100)
    assert len(page["messages"]) == 100
    assert page["has_more"] is True
    older = await fetch(client, room["id"], limit=100, before=page["next_before"])
    assert len(older["messages"]) == 1
    assert older["has_more"] is False


async def test_a_page_that_fits_exactly_has_no_more(server: RunningServer) -> None:
    """`has_more` is false when the page holds exactly the remaining messages."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    await send_many(client, room["id"], 10)
    page = await fetch(client, room["id"], limit=10)
    assert len(page["messages"]) == 10
    assert page["has_more"] is False


async def test_an_empty_conversation_has_an_empty_page(server: RunningServer) -> None:
    """No messages: an empty page, no more, and no cursor."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    page = await client.request("FetchHistory", conversation_id=room["id"], request_id="h0")
    assert page == {"type": "HistoryChunk", "conversation_id": room["id"], "messages": [],
                    "has_more": False, "next_before": None, "request_id": "h0"}


async def test_before_the_first_message_is_empty(server: RunningServer) -> None:
    """A cursor at the oldest message returns nothing older."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    first = await send(client, room["id"], "first")
    page = await fetch(client, room["id"], before=first["seq"])
    assert page["messages"] == []
    assert page["has_more"] is False
    assert page["next_before"] is None
    assert (await fetch(client, room["id"], before=0))["messages"] == []


async def test_new_messages_do_not_shift_older_pages(server: RunningServer) -> None:
    """A seq cursor is stable: messages arriving between page requests never make the walk
    back skip or repeat a message."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    old = sorted(await send_many(client, room["id"], 30, "old"), key=lambda m: m["seq"])
    first = await fetch(client, room["id"], limit=10)
    await send_many(client, room["id"], 15, "new")
    walked = list(first["messages"])
    before = first["next_before"]
    while True:
        page = await fetch(client, room["id"], limit=10, before=before)
        walked = page["messages"] + walked
        if not page["has_more"]:
            break
        before = page["next_before"]
    assert [m["id"] for m in walked] == [m["id"] for m in old]


async def test_history_shows_edits_and_tombstones_in_place(server: RunningServer) -> None:
    """Edited and deleted messages keep their seq; history shows their current state."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    a, b, c = await send_many(client, room["id"], 3)
    edited = await client.request("EditMessage", message_id=a["id"], content="edited")
    await client.request("DeleteMessage", message_id=b["id"])
    history = await all_messages(client, room["id"])
    assert [m["seq"] for m in history] == sorted(m["seq"] for m in (a, b, c))
    by_id = {m["id"]: m for m in history}
    assert by_id[a["id"]] == edited["message"]
    assert by_id[b["id"]]["content"] == ""
    assert by_id[b["id"]]["deleted_at"] is not None
    assert by_id[c["id"]] == c


async def test_rest_pages_equal_fetch_history_pages(server: RunningServer) -> None:
    """`GET …/messages?before=&limit=` returns the very page FetchHistory returns."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    await send_many(client, room["id"], 25)
    ws_page = await fetch(client, room["id"], limit=10)
    ws_older = await fetch(client, room["id"], limit=10, before=ws_page["next_before"])
    async with server.http(alice) as http:
        url = f"/api/v1/conversations/{room['id']}/messages"
        rest_page = (await http.get(url, params={"limit": 10})).json()
        rest_older = (await http.get(url, params={"limit": 10,
                                                  "before": rest_page["next_before"]})).json()
    for ws, rest in ((ws_page, rest_page), (ws_older, rest_older)):
        assert rest == {"messages": ws["messages"], "has_more": ws["has_more"],
                        "next_before": ws["next_before"]}
    assert await rest_messages(server, alice, room["id"]) == await all_messages(
        client, room["id"])


@pytest.mark.parametrize(("fields", "field"), [
    ({"limit": 0}, "$.limit"),
    ({"limit": 101}, "$.limit"),
    ({"limit": -1}, "$.limit"),
    ({"limit": "10"}, "$.limit"),
    ({"limit": 2.5}, "$.limit"),
    ({"before": -1}, "$.before"),
    ({"before": "5"}, "$.before"),
    ({"before": True}, "$.before"),
    ({"before": 2**63}, "$.before"),
])
async def test_out_of_range_paging_is_refused(server: RunningServer, fields: dict[str, Any],
                                              field: str) -> None:
    """`limit` is 1–100 and `before` a seq (0 to 2**63-1); anything else is BAD_REQUEST."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    reply = await client.request("FetchHistory", conversation_id=room["id"], request_id="hb",
                                 **fields)
    assert_error(reply, "BAD_REQUEST", field=field, request_id="hb")


async def test_history_of_an_unknown_conversation_is_not_found(server: RunningServer) -> None:
    """An unknown `conversation_id` is NOT_FOUND."""
    client = await server.connect(server.user())
    reply = await client.request("FetchHistory", conversation_id=MISSING, request_id="hn")
    assert_error(reply, "NOT_FOUND", field="$.conversation_id", request_id="hn")


async def test_history_is_sent_only_to_the_requester(server: RunningServer) -> None:
    """`HistoryChunk` is a direct response: other subscribers never see it."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, members=[bob])
    client = await joined(server, alice, room["id"])
    other = await joined(server, bob, room["id"])
    await send(client, room["id"], "x")
    await fetch(client, room["id"])
    await other.expect("NewMessage", timeout=TIMEOUT)
    await other.expect_none("HistoryChunk", within=0.3)
