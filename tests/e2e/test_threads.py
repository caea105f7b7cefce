"""Threads over the wire: a reply's parent shows `reply_count` and `last_reply_at`, hears
`ThreadUpdated` under the next version, is returned by `SyncMessages`, and a thread reads
with `FetchHistory{parent_id}` or `GET …/messages?parent_id=` on the history's cursor.
A deleted reply no longer counts. Both backends."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.client import ChatClient
from tests.support.flows import MISSING, TIMEOUT, assert_error, fetch, joined, send
from tests.support.server import RunningServer

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def started(server: RunningServer) -> tuple[str, ChatClient, ChatClient, dict[str, Any]]:
    """A group of alice and bob, both subscribed, with alice's parent message heard."""
    alice, bob = server.user("alice"), server.user("bob")
    room = (await server.create_conversation(alice, kind="group", members=[bob]))["id"]
    a, b = await joined(server, alice, room), await joined(server, bob, room)
    parent = await send(a, room, "topic")
    for client in (a, b):
        await client.expect("NewMessage", timeout=TIMEOUT)
    return room, a, b, parent


async def sync(client: ChatClient, room: str, since_version: int) -> list[dict[str, Any]]:
    reply = await client.request("SyncMessages", conversation_id=room,
                                 since_version=since_version, timeout=TIMEOUT)
    assert reply["type"] == "SyncChunk", reply
    messages: list[dict[str, Any]] = reply["messages"]
    return messages


async def test_a_reply_updates_its_parent(server: RunningServer) -> None:
    room, a, b, parent = await started(server)
    assert (parent["reply_count"], parent["last_reply_at"]) == (0, None)
    reply = await send(b, room, "re", parent_id=parent["id"])
    assert (await a.expect("NewMessage", timeout=TIMEOUT))["message"]["id"] == reply["id"]
    thread = await a.expect("ThreadUpdated", timeout=TIMEOUT)
    assert thread["message_id"] == parent["id"]
    assert thread["version"] == reply["version"] + 1
    assert (thread["reply_count"], thread["last_reply_at"]) == (1, reply["created_at"])
    changed = await sync(b, room, parent["version"])
    assert [m["id"] for m in changed] == [reply["id"], parent["id"]]
    assert changed[1]["reply_count"] == 1
    assert changed[1]["version"] == thread["version"]


async def test_a_deleted_reply_no_longer_counts(server: RunningServer) -> None:
    room, a, b, parent = await started(server)
    first = await send(b, room, "one", parent_id=parent["id"])
    second = await send(b, room, "two", parent_id=parent["id"])
    reply = await b.request("DeleteMessage", message_id=second["id"], timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    for _ in range(3):
        last = await a.expect("ThreadUpdated", timeout=TIMEOUT)
    assert (last["reply_count"], last["last_reply_at"]) == (1, first["created_at"])
    [listed] = [m for m in (await fetch(a, room))["messages"] if m["id"] == parent["id"]]
    assert listed["reply_count"] == 1


async def test_a_thread_pages_with_the_history_cursor(server: RunningServer) -> None:
    room, a, b, parent = await started(server)
    replies = [await send(b, room, f"r{n}", parent_id=parent["id"]) for n in range(3)]
    await send(a, room, "not in the thread")
    page = await fetch(a, room, parent_id=parent["id"], limit=2)
    assert page["parent_id"] == parent["id"]
    assert [m["id"] for m in page["messages"]] == [r["id"] for r in replies[1:]]
    assert page["has_more"]
    older = await fetch(a, room, parent_id=parent["id"], before=page["next_before"])
    assert [m["id"] for m in older["messages"]] == [replies[0]["id"]]
    assert not older["has_more"]


async def test_a_thread_over_rest(server: RunningServer) -> None:
    alice, bob = server.user("alice"), server.user("bob")
    room = (await server.create_conversation(alice, kind="group", members=[bob]))["id"]
    a = await joined(server, alice, room)
    parent = await send(a, room, "topic")
    reply = await send(a, room, "re", parent_id=parent["id"])
    url = f"/api/v1/conversations/{room}/messages"
    async with server.http(bob) as http:
        found = await http.get(url, params={"parent_id": parent["id"]})
        assert found.status_code == 200, found.text
        assert [m["id"] for m in found.json()["messages"]] == [reply["id"]]
        unknown = await http.get(url, params={"parent_id": MISSING})
        assert unknown.status_code == 400, unknown.text
        assert "$.parent_id" in unknown.text
        malformed = await http.get(url, params={"parent_id": "nope"})
        assert malformed.status_code == 400, malformed.text
        assert "parent_id" in malformed.text


async def test_a_thread_of_an_unknown_parent_is_refused(server: RunningServer) -> None:
    room, a, _, _ = await started(server)
    reply = await a.request("FetchHistory", conversation_id=room, parent_id=MISSING,
                            request_id="t1", timeout=TIMEOUT)
    assert_error(reply, "BAD_REQUEST", field="$.parent_id", request_id="t1")
    refused = await a.request("SendMessage", conversation_id=room, content="re",
                              parent_id=MISSING, request_id="t2", timeout=TIMEOUT)
    assert_error(refused, "BAD_REQUEST", field="$.parent_id", request_id="t2")
    assert len((await fetch(a, room))["messages"]) == 1
