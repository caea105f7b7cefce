"""SyncMessages: every change after a version or a time, in version order, paged without
skips or repeats (PROTOCOL.md §3)."""

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
    assert_tombstone,
    joined,
    send,
)
from tests.support.replica import history_state, normalised
from tests.support.server import RunningServer

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def ok(client: ChatClient, type_: str, **fields: Any) -> dict[str, Any]:
    """Send an action and assert it was confirmed."""
    reply = await client.request(type_, timeout=TIMEOUT, **fields)
    assert reply["type"] == "ActionConfirmed", reply
    return reply


async def sync(client: ChatClient, conversation_id: str, **fields: Any) -> dict[str, Any]:
    """One `SyncChunk` (asserting its type)."""
    reply = await client.request("SyncMessages", conversation_id=conversation_id,
                                 timeout=TIMEOUT, **fields)
    assert reply["type"] == "SyncChunk", reply
    assert reply["conversation_id"] == conversation_id
    return reply


async def mixed_history(server: RunningServer) -> tuple[str, ChatClient, ChatClient]:
    """A channel where two users sent, edited, deleted and (un)reacted, interleaved."""
    alice, bob = server.user("alice"), server.user("bob")
    room = (await server.create_conversation(alice, members=[bob]))["id"]
    a, b = await joined(server, alice, room), await joined(server, bob, room)
    ids: list[str] = []
    for n in range(12):
        ids.append((await send(a if n % 2 else b, room, f"message {n}"))["id"])
        if n % 3 == 2:
            await ok(a, "AddReaction", message_id=ids[n - 1], emoji="👍")
            await ok(b, "AddReaction", message_id=ids[n - 1], emoji="👍")
        if n % 4 == 3:
            author = a if (n - 2) % 2 else b
            await ok(author, "EditMessage", message_id=ids[n - 2], content=f"edited {n}")
    await ok(b, "DeleteMessage", message_id=ids[0])
    await ok(a, "RemoveReaction", message_id=ids[1], emoji="👍")
    await ok(a, "DeleteMessage", message_id=ids[5])
    await ok(b, "AddReaction", message_id=ids[11], emoji="🎉")
    await ok(a, "EditMessage", message_id=ids[3], content="edited again")
    return room, a, b


async def test_seven_message_pages_return_every_change_once_in_version_order(
        server: RunningServer) -> None:
    """Paging by `last_version` over sends, edits, deletes and reactions yields each message
    once, in its latest state, with versions strictly rising across pages."""
    room, client, _ = await mixed_history(server)
    seen: list[dict[str, Any]] = []
    cursor, pages = 0, 0
    while True:
        page = await sync(client, room, since_version=cursor, limit=7)
        pages += 1
        versions = [m["version"] for m in page["messages"]]
        assert versions == sorted(set(versions)), page
        assert all(v > cursor for v in versions), page
        assert len(versions) <= 7
        if page["messages"]:
            assert page["last_version"] == versions[-1]
        seen += page["messages"]
        cursor = page["last_version"]
        if not page["has_more"]:
            break
        assert len(versions) == 7
    history = await all_messages(client, room)
    assert pages == -(-len(history) // 7)
    assert len({m["id"] for m in seen}) == len(seen) == len(history) == 12
    assert [m["version"] for m in seen] == sorted(m["version"] for m in history)
    by_id = {m["id"]: normalised(m) for m in seen}
    assert [by_id[m["id"]] for m in history] == history_state(history)
    assert cursor == max(m["version"] for m in history)


async def test_sync_returns_only_changes_after_the_given_version(server: RunningServer) -> None:
    """A mid-way `since_version` gets exactly the messages changed after it."""
    room, client, _ = await mixed_history(server)
    history = await all_messages(client, room)
    middle = sorted(m["version"] for m in history)[5]
    page = await sync(client, room, since_version=middle)
    expected = sorted((m for m in history if m["version"] > middle), key=lambda m: m["version"])
    assert [normalised(m) for m in page["messages"]] == history_state(expected)
    assert page["has_more"] is False


async def test_deleted_messages_come_as_tombstones(server: RunningServer) -> None:
    """A deletion syncs as the message's tombstone at the deletion's version."""
    alice = server.user()
    room = (await server.create_conversation(alice))["id"]
    client = await joined(server, alice, room)
    message = await send(client, room, "soon gone")
    await ok(client, "AddReaction", message_id=message["id"], emoji="👀")
    await ok(client, "DeleteMessage", message_id=message["id"])
    deleted = await client.expect("MessageDeleted", timeout=TIMEOUT)
    [tombstone] = (await sync(client, room, since_version=message["version"]))["messages"]
    assert tombstone["id"] == message["id"]
    assert tombstone["version"] == deleted["version"] == message["version"] + 2
    assert_tombstone(tombstone)


async def test_a_reaction_change_brings_the_message_into_the_sync(
        server: RunningServer) -> None:
    """Reacting to an old message makes it the newest change, reactions included."""
    alice = server.user()
    room = (await server.create_conversation(alice))["id"]
    client = await joined(server, alice, room)
    old = await send(client, room, "old")
    newer = await send(client, room, "newer")
    await ok(client, "AddReaction", message_id=old["id"], emoji="🔥")
    page = await sync(client, room, since_version=newer["version"])
    assert [(m["id"], m["version"]) for m in page["messages"]] == [
        (old["id"], newer["version"] + 1)]
    assert page["messages"][0]["reactions"] == [
        {"emoji": "🔥", "count": 1, "user_ids": [client.user_id]}]


async def test_nothing_new_returns_the_same_version(server: RunningServer) -> None:
    """With no change after `since_version`, the page is empty and the cursor stays."""
    alice = server.user()
    room = (await server.create_conversation(alice))["id"]
    client = await joined(server, alice, room)
    message = await send(client, room, "only")
    page = await sync(client, room, since_version=message["version"])
    assert page["messages"] == []
    assert page["has_more"] is False
    assert page["last_version"] == message["version"]
    assert (await sync(client, room))["messages"][0]["id"] == message["id"]


async def test_sync_by_time_finds_creations_edits_deletions_and_reactions(
        server: RunningServer) -> None:
    """`since` selects every message created, edited, deleted or reacted to after it."""
    alice = server.user()
    room = (await server.create_conversation(alice))["id"]
    client = await joined(server, alice, room)
    to_edit, to_delete, to_react, untouched, mark = [
        await send(client, room, name) for name in ("edit", "delete", "react", "same", "mark")]
    await ok(client, "EditMessage", message_id=to_edit["id"], content="edited")
    await ok(client, "DeleteMessage", message_id=to_delete["id"])
    await ok(client, "AddReaction", message_id=to_react["id"], emoji="✅")
    fresh = await send(client, room, "fresh")
    page = await sync(client, room, since=mark["created_at"])
    assert [m["id"] for m in page["messages"]] == [
        to_edit["id"], to_delete["id"], to_react["id"], fresh["id"]]
    assert untouched["id"] not in {m["id"] for m in page["messages"]}
    assert page["last_version"] == fresh["version"]
    assert page["has_more"] is False


async def test_sync_by_time_accepts_any_offset(server: RunningServer) -> None:
    """`since` may carry any UTC offset; it names the same instant."""
    alice = server.user()
    room = (await server.create_conversation(alice))["id"]
    client = await joined(server, alice, room)
    await send(client, room, "first")
    later = await send(client, room, "later")
    page = await sync(client, room, since="2000-01-01T02:00:00.000000+02:00")
    assert len(page["messages"]) == 2
    page = await sync(client, room, since=later["created_at"].replace("Z", "+00:00"))
    assert page["messages"] == []


async def test_an_empty_sync_by_time_resumes_from_the_current_version(
        server: RunningServer) -> None:
    """With nothing after `since`, `last_version` is the conversation's version, so the
    client resumes by version without refetching."""
    alice = server.user()
    room = (await server.create_conversation(alice))["id"]
    client = await joined(server, alice, room)
    last = await send(client, room, "last")
    page = await sync(client, room, since="2999-01-01T00:00:00Z")
    assert page["messages"] == []
    assert page["last_version"] == last["version"]


async def test_sync_by_time_pages_by_version(server: RunningServer) -> None:
    """A `since` sync is paged like any other: continue with `since_version`."""
    alice = server.user()
    room = (await server.create_conversation(alice))["id"]
    client = await joined(server, alice, room)
    sent = [await send(client, room, f"n{n}") for n in range(5)]
    first = await sync(client, room, since="2000-01-01T00:00:00Z", limit=3)
    assert first["has_more"] is True
    rest = await sync(client, room, since_version=first["last_version"], limit=3)
    assert rest["has_more"] is False
    assert [m["id"] for m in first["messages"] + rest["messages"]] == [m["id"] for m in sent]


async def test_a_public_channel_syncs_without_joining(server: RunningServer) -> None:
    """Anyone may read a channel, so anyone may sync it."""
    alice = server.user()
    room = (await server.create_conversation(alice))["id"]
    message = await send(await joined(server, alice, room), room, "hi")
    stranger = await server.connect(server.user())
    assert [m["id"] for m in (await sync(stranger, room))["messages"]] == [message["id"]]


async def test_an_outsider_cannot_sync_a_private_group(server: RunningServer) -> None:
    """A group's changes are FORBIDDEN to non-members."""
    alice = server.user()
    group = (await server.create_conversation(alice, kind="group"))["id"]
    await send(await joined(server, alice, group), group, "private")
    outsider = await server.connect(server.user())
    reply = await outsider.request("SyncMessages", conversation_id=group, request_id="peek")
    assert_error(reply, "FORBIDDEN", request_id="peek")


async def test_syncing_an_unknown_conversation_is_not_found(server: RunningServer) -> None:
    """An unknown conversation id is NOT_FOUND."""
    client = await server.connect(server.user())
    reply = await client.request("SyncMessages", conversation_id=MISSING, request_id="s404")
    assert_error(reply, "NOT_FOUND", field="$.conversation_id", request_id="s404")


@pytest.mark.parametrize(("fields", "field"), [
    ({"since_version": 1, "since": "2026-01-01T00:00:00Z"}, "$.since"),
    ({"since": "yesterday"}, "$.since"),
    ({"since": "2026-01-01T00:00:00"}, "$.since"),
    ({"since_version": -1}, "$.since_version"),
    ({"since_version": "3"}, "$.since_version"),
    ({"limit": 0}, "$.limit"),
    ({"limit": 501}, "$.limit"),
], ids=["both_cursors", "not_a_time", "no_offset", "negative_version", "string_version",
        "limit_0", "limit_501"])
async def test_bad_sync_requests_are_refused(server: RunningServer, fields: dict[str, Any],
                                             field: str) -> None:
    """Bad cursors and limits get BAD_REQUEST naming the field."""
    alice = server.user()
    room = (await server.create_conversation(alice))["id"]
    client = await server.connect(alice)
    reply = await client.request("SyncMessages", conversation_id=room, request_id="bad",
                                 **fields)
    assert_error(reply, "BAD_REQUEST", field=field, request_id="bad")


async def test_members_syncing_at_once_each_get_the_page_and_an_outsider_is_refused(
        server: RunningServer) -> None:
    """A room's members reconnecting together ask for the same changes at once (their reads
    are shared, adapters/sql/messages.py): each gets every change after its version, one
    asking from another version gets its own page, and an outsider's request in the same
    burst is FORBIDDEN without disturbing theirs."""
    alice = server.user()
    members = [server.user() for _ in range(11)]
    group = (await server.create_conversation(alice, kind="group",
                                              members=members))["id"]
    author = await joined(server, alice, group)
    sent = [(await send(author, group, f"m{n}"))["id"] for n in range(6)]
    clients = [await server.connect(m) for m in members]
    outsider = await server.connect(server.user())
    replies = await asyncio.gather(
        *(c.request("SyncMessages", conversation_id=group, since_version=2,
                    request_id=f"s{n}", timeout=TIMEOUT) for n, c in enumerate(clients[:10])),
        clients[10].request("SyncMessages", conversation_id=group, since_version=5,
                            request_id="late", timeout=TIMEOUT),
        outsider.request("SyncMessages", conversation_id=group, since_version=2,
                         request_id="peek", timeout=TIMEOUT))
    for n, reply in enumerate(replies[:10]):
        assert reply["type"] == "SyncChunk", reply
        assert reply["request_id"] == f"s{n}"
        assert [m["id"] for m in reply["messages"]] == sent[2:]
        assert reply["last_version"] == 6
    assert [m["id"] for m in replies[10]["messages"]] == [sent[5]]
    assert_error(replies[11], "FORBIDDEN", request_id="peek")
    # Nothing changed: the same request afterwards reads the same page.
    assert [m["id"] for m in (await sync(clients[0], group, since_version=2))["messages"]] \
        == sent[2:]
