"""The inbox (PROTOCOL.md §4.1): every connection hears about all of its user's
conversations without joining any and without polling — added, removed, the summary
(last message, unread and mention counts, muted), the read mark moved on another device —
across three instances on PostgreSQL and Redis, and on both backends of one server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.conftest import StartServer
from tests.support.client import ChatClient
from tests.support.cluster import Cluster, postgres_database, run_cluster
from tests.support.flows import TIMEOUT, send, set_role
from tests.support.server import RunningServer, User

pytestmark = pytest.mark.asyncio(loop_scope="session")

# The bound for an event crossing instances; the server coalesces summaries per
# 0.1 s (delivery/inbox.py), so this leaves a loaded machine room.
CROSSING_S = 1.0


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shared_cluster() -> AsyncIterator[Cluster]:
    async with postgres_database() as db, run_cluster(db.url, 3, rate_limits=False) as cluster:
        yield cluster


@pytest_asyncio.fixture(loop_scope="session")
async def cluster(shared_cluster: Cluster) -> AsyncIterator[Cluster]:
    yield shared_cluster
    await shared_cluster.close_clients()


async def create(server: RunningServer, owner: User, kind: str, members: list[User],
                 name: str | None = "room") -> str:
    for member in members:
        await server.ensure_user(member)
    body: dict[str, Any] = {"kind": kind, "member_ids": [m.id for m in members]}
    if name is not None:
        body["name"] = name
    async with server.http(owner) as http:
        created = await http.post("/api/v1/conversations", json=body)
    assert created.status_code in (200, 201), created.text
    conversation_id: str = created.json()["id"]
    return conversation_id


async def remove(server: RunningServer, actor: User, conversation_id: str, target: User) -> None:
    async with server.http(actor) as http:
        response = await http.delete(
            f"/api/v1/conversations/{conversation_id}/members/{target.id}")
    assert response.status_code in (200, 204), response.text


async def summary(client: ChatClient, conversation_id: str, content: str | None = None,
                  **match: Any) -> dict[str, Any]:
    """The next summary of the conversation matching `match` (and showing `content` as
    its last message, when given): earlier ones, coalesced or not, are passed over."""
    while True:
        heard = await client.expect("ConversationSummary", timeout=TIMEOUT,
                                    conversation_id=conversation_id, **match)
        if content is None or heard["last_message"]["content"] == content:
            return heard


# -- across three instances --------------------------------------------------------------


async def test_added_on_one_instance_is_heard_on_another_within_a_second(
        cluster: Cluster) -> None:
    owner, bob = cluster.user("owner"), cluster.user("bob")
    room = await create(cluster[0], owner, "group", [])
    listening = await cluster.connect(1, bob)  # never joins, never asks
    assert await set_role(cluster[0], owner, room, bob, "member") in (200, 201)
    committed = time.monotonic()  # the PUT's answer: the membership is stored
    added = await listening.expect("ConversationAdded", timeout=TIMEOUT)
    assert time.monotonic() - committed < CROSSING_S
    conversation = added["conversation"]
    assert conversation["id"] == room
    assert conversation["role"] == "member"
    assert conversation["unread_count"] == 0
    assert conversation["member_count"] == 2


async def test_a_direct_message_from_a_stranger_reaches_the_recipient_at_once(
        cluster: Cluster) -> None:
    stranger, recipient = cluster.user("stranger"), cluster.user("recipient")
    await cluster[0].ensure_user(recipient)
    phone = await cluster.connect(2, recipient)
    dm = await create(cluster[0], stranger, "direct", [recipient], name=None)
    added = await phone.expect("ConversationAdded", timeout=CROSSING_S)
    assert added["conversation"]["id"] == dm
    assert added["conversation"]["kind"] == "direct"
    sender = await cluster.connect(0, stranger)
    sent = await send(sender, dm, "hi, we have not met")
    heard = await summary(phone, dm, unread_count=1)
    assert heard["last_message"]["id"] == sent["id"]
    assert heard["last_message"]["content"] == "hi, we have not met"
    assert heard["last_message"]["sender_id"] == stranger.id
    assert heard["version"] == sent["version"]
    assert heard["mention_count"] == 0


async def test_summaries_and_read_state_across_instances(cluster: Cluster) -> None:
    owner, reader = cluster.user("owner"), cluster.user("reader")
    room = await create(cluster[0], owner, "group", [reader])
    laptop = await cluster.connect(1, reader)
    phone = await cluster.connect(2, reader)
    author = await cluster.connect(0, owner)
    await send(author, room, "one")
    last = await send(author, room, "two")
    for device in (laptop, phone):
        heard = await summary(device, room, unread_count=2)
        assert heard["last_message"]["content"] == "two"
    # The laptop reads (it joins to read; the phone never joins).
    joined = await laptop.request("JoinConversation", conversation_id=room, timeout=TIMEOUT)
    assert joined["type"] == "ActionConfirmed", joined
    marked = await laptop.request("MarkAsRead", conversation_id=room, message_id=last["id"],
                                  timeout=TIMEOUT)
    assert marked["type"] == "ActionConfirmed", marked
    read = await phone.expect("ReadStateChanged", timeout=TIMEOUT, conversation_id=room)
    assert read["message_id"] == last["id"]
    assert read["unread_count"] == 0
    await summary(phone, room, unread_count=0)
    # The author's own message is not unread for the author, but its preview moves.
    await send(author, room, "three")
    mine = await summary(author, room, "three")
    assert mine["unread_count"] == 0
    await summary(phone, room, "three", unread_count=1)


async def test_a_removed_member_hears_it_and_gets_no_more_summaries(cluster: Cluster) -> None:
    owner, gone = cluster.user("owner"), cluster.user("gone")
    room = await create(cluster[0], owner, "group", [gone])
    listening = await cluster.connect(1, gone)
    author = await cluster.connect(0, owner)
    await send(author, room, "before")
    await summary(listening, room, unread_count=1)
    await remove(cluster[2], owner, room, gone)
    removed = await listening.expect("ConversationRemoved", timeout=CROSSING_S)
    assert removed["conversation_id"] == room
    await send(author, room, "after")
    await summary(author, room, "after")  # the summary of "after" went out
    await listening.expect_none("ConversationSummary", within=CROSSING_S,
                                conversation_id=room)


async def test_a_mention_is_counted_on_another_instance_and_reading_resets_it(
        cluster: Cluster) -> None:
    owner, named, other = cluster.user("owner"), cluster.user("named"), cluster.user("other")
    room = await create(cluster[0], owner, "group", [named, other])
    phone = await cluster.connect(1, named)
    bystander = await cluster.connect(2, other)
    author = await cluster.connect(0, owner)
    await send(author, room, "no mention")
    await summary(phone, room, "no mention", unread_count=1, mention_count=0)
    sent = await send(author, room, "look", mentions=[named.id])
    confirmed = time.monotonic()
    await summary(phone, room, "look", unread_count=2, mention_count=1)
    assert time.monotonic() - confirmed < CROSSING_S
    await summary(bystander, room, "look", unread_count=2, mention_count=0)
    # A first connection on another instance starts from the store's counts.
    laptop = await cluster.connect(2, named)
    await send(author, room, "again", mentions=[named.id])
    await summary(laptop, room, "again", unread_count=3, mention_count=2)
    marked = await phone.request("MarkAsRead", conversation_id=room, message_id=sent["id"],
                                 timeout=TIMEOUT)
    assert marked["type"] == "ActionConfirmed", marked
    read = await laptop.expect("ReadStateChanged", timeout=TIMEOUT, conversation_id=room)
    assert (read["unread_count"], read["mention_count"]) == (1, 1)
    await summary(phone, room, unread_count=1, mention_count=1)
    await send(author, room, "after")
    await summary(laptop, room, "after", unread_count=2, mention_count=1)


async def test_everyone_mention_by_a_moderator_counts_for_every_member(
        cluster: Cluster) -> None:
    owner, mod, ann = cluster.user("owner"), cluster.user("mod"), cluster.user("ann")
    room = await create(cluster[0], owner, "group", [ann])
    assert await set_role(cluster[0], owner, room, mod, "moderator") in (200, 201)
    listeners = [await cluster.connect(1, owner), await cluster.connect(2, ann)]
    speaker = await cluster.connect(0, mod)
    await send(speaker, room, "all hands", mentions=["@all", ann.id])
    for listener in listeners:  # `@all` and an id in one message are one mention
        await summary(listener, room, "all hands", unread_count=1, mention_count=1)
    await send(speaker, room, "here too", mentions=["@here"])
    for listener in listeners:
        await summary(listener, room, "here too", unread_count=2, mention_count=2)
    own = await summary(speaker, room, "here too")
    assert (own["unread_count"], own["mention_count"]) == (0, 0)


# -- one server, both backends (SQLite with the in-process bus; PostgreSQL with Redis) ----


async def test_new_message_and_read_on_another_device(server: RunningServer) -> None:
    owner, reader = server.user("owner"), server.user("reader")
    room = await create(server, owner, "group", [reader])
    laptop, phone = await server.connect(reader), await server.connect(owner)
    other_device = await server.connect(reader)
    author = phone
    last = await send(author, room, "preview me " + "x" * 200)
    heard = await summary(laptop, room, unread_count=1)
    assert heard["last_message"]["content"] == ("preview me " + "x" * 200)[:100]
    await summary(other_device, room, unread_count=1)
    marked = await laptop.request("MarkAsRead", conversation_id=room, message_id=last["id"],
                                  timeout=TIMEOUT)
    assert marked["type"] == "ActionConfirmed", marked
    read = await other_device.expect("ReadStateChanged", timeout=TIMEOUT,
                                     conversation_id=room)
    assert read["unread_count"] == 0
    assert read["message_id"] == last["id"]
    await summary(other_device, room, unread_count=0)


async def test_channel_join_adds_and_leaving_removes(server: RunningServer) -> None:
    owner, walker = server.user("owner"), server.user("walker")
    channel = await create(server, owner, "channel", [])
    await server.ensure_user(walker)
    second = await server.connect(walker)
    first = await server.connect(walker)
    joined = await first.request("JoinConversation", conversation_id=channel,
                                 timeout=TIMEOUT)
    assert joined["type"] == "ActionConfirmed", joined
    added = await second.expect("ConversationAdded", timeout=TIMEOUT)
    assert added["conversation"]["id"] == channel
    await remove(server, walker, channel, walker)
    await second.expect("ConversationRemoved", timeout=TIMEOUT, conversation_id=channel)


async def test_a_joined_connection_keeps_the_full_stream(server: RunningServer) -> None:
    owner, member = server.user("owner"), server.user("member")
    room = await create(server, owner, "group", [member])
    watcher = await server.connect(member)
    joined = await watcher.request("JoinConversation", conversation_id=room, timeout=TIMEOUT)
    assert joined["type"] == "ActionConfirmed", joined
    author = await server.connect(owner)
    sent = await send(author, room, "full")
    full = await watcher.expect("NewMessage", timeout=TIMEOUT)
    assert full["message"]["id"] == sent["id"]
    assert full["message"]["content"] == "full"
    await summary(watcher, room, unread_count=1)


async def test_a_muted_conversation_is_counted_and_flagged_on_every_device(
        server: RunningServer) -> None:
    owner, quiet = server.user("owner"), server.user("quiet")
    room = await create(server, owner, "group", [quiet])
    phone, laptop = await server.connect(quiet), await server.connect(quiet)
    author = await server.connect(owner)
    await send(author, room, "loud")
    await summary(laptop, room, "loud", muted=False)
    reply = await phone.request("UpdateMembership", conversation_id=room, muted=True,
                                timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    await laptop.expect("MembershipUpdated", timeout=TIMEOUT, conversation_id=room,
                        muted=True)
    for device in (phone, laptop):  # both devices' state follows the phone's change
        await summary(device, room, unread_count=1, muted=True)
    await send(author, room, "still counted", mentions=[quiet.id])
    for device in (phone, laptop):
        await summary(device, room, "still counted", unread_count=2, mention_count=1,
                      muted=True)
    mine = await summary(author, room, "still counted")
    assert mine["muted"] is False  # the setting is the member's own
    # A new connection starts from the stored setting.
    fresh = await server.connect(quiet)
    await send(author, room, "later")
    await summary(fresh, room, "later", unread_count=3, mention_count=1, muted=True)


async def test_users_connecting_together_each_count_from_their_own_conversations(
        server: RunningServer) -> None:
    """Connections arriving at once share the store's reads (adapters/sql/coalesce.py);
    each still starts counting from its own memberships: its rooms' unread and mention
    counts, none of a room it is not in, nothing of one it is banned from."""
    owner = server.user("owner")
    readers = [server.user(f"reader{n}") for n in range(12)]
    rooms = []
    for n in range(3):  # room n: every reader whose number is divisible by n + 1
        rooms.append(await create(server, owner, "group", readers[::n + 1], name=f"r{n}"))
    banned = readers[6]  # in rooms 0, 1 and 2; banned from room 1
    assert await set_role(server, owner, rooms[1], banned, "banned") in (200, 204)
    author = await server.connect(owner)
    for n, room in enumerate(rooms):  # room n: n + 1 messages unread before anyone connects
        for seq in range(n + 1):
            await send(author, room, f"before {seq}",
                       mentions=[readers[0].id] if (n, seq) == (2, 0) else [])
    clients = await asyncio.gather(*(server.connect(reader) for reader in readers))
    for room in rooms:
        await send(author, room, "after")
    for n, (reader, client) in enumerate(zip(readers, clients, strict=True)):
        mine = [k for k in range(3) if n % (k + 1) == 0 and not (reader == banned and k == 1)]
        for k in mine:
            heard = await summary(client, rooms[k], "after")
            assert heard["unread_count"] == k + 2, (reader.name, k, heard)
            assert heard["mention_count"] == (1 if (n, k) == (0, 2) else 0)
        await client.settle()
        others = {rooms[k] for k in range(3)} - {rooms[k] for k in mine}
        heard_of = {f["conversation_id"] for f in client.all("ConversationSummary")}
        assert not heard_of & others, (reader.name, heard_of & others)


async def test_inbox_off_sends_nothing_unjoined(start_server: StartServer) -> None:
    async with start_server(inbox=False, rate_limits=False) as server:
        owner, member = server.user("owner"), server.user("member")
        await server.ensure_user(member)
        listening = await server.connect(member)
        room = await create(server, owner, "group", [member])
        author = await server.connect(owner)
        await send(author, room, "quiet")
        await listening.expect_none("ConversationAdded", within=0.3)
        await listening.expect_none("ConversationSummary", within=0.3)
        await listening.close()
