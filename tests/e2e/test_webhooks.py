"""Webhooks (docs/WEBHOOKS.md) against a real receiver that verifies every request with the
`standardwebhooks` package: each event arrives, in order per conversation, through a
failing, slow and absent receiver, across a SIGKILL, and from three instances at once."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.conftest import Backend, StartServer
from tests.support.client import ChatClient
from tests.support.cluster import postgres_database, run_cluster
from tests.support.flows import TIMEOUT, joined, send, set_role
from tests.support.metrics import sample
from tests.support.process import for_backend
from tests.support.server import RunningServer
from tests.support.waiting import until
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.asyncio(loop_scope="session")

OFFER_SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
             "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n")


def quick(receiver: WebhookReceiver, **overrides: Any) -> dict[str, Any]:
    """Webhook settings with retries short enough for a test."""
    settings: dict[str, Any] = {
        "webhook_url": receiver.url, "webhook_secret": receiver.secret,
        "webhook_timeout": 0.5, "webhook_retry_base": 0.05, "webhook_retry_max_delay": 0.3,
        "webhook_poll_interval": 0.1, "rate_limits": False}
    settings.update(overrides)
    return settings


@pytest_asyncio.fixture(loop_scope="session")
async def hooked(start_server: StartServer,
                 receiver: WebhookReceiver) -> AsyncIterator[RunningServer]:
    async with start_server(**quick(receiver)) as server:
        yield server


async def test_every_event_arrives_signed_in_order(hooked: RunningServer,
                                                   receiver: WebhookReceiver) -> None:
    """Each change of a conversation reaches the receiver once verified, in commit order,
    with the protocol's objects and the conversation version."""
    server = hooked
    alice, bob, carol = server.user("alice"), server.user("bob"), server.user("carol")
    room = (await server.create_conversation(alice))["id"]
    a = await joined(server, alice, room)
    await joined(server, bob, room)
    message = await send(a, room, "hello")
    edit = await a.request("EditMessage", message_id=message["id"], content="hello!",
                           timeout=TIMEOUT)
    assert edit["type"] == "ActionConfirmed", edit
    for kind in ("AddReaction", "RemoveReaction"):
        reply = await a.request(kind, message_id=message["id"], emoji="👍", timeout=TIMEOUT)
        assert reply["type"] == "ActionConfirmed", reply
    reply = await a.request("DeleteMessage", message_id=message["id"], timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    assert await set_role(server, alice, room, carol, "member") in (200, 201)
    assert await set_role(server, alice, room, carol, "moderator") == 200
    async with server.http(alice) as http:
        response = await http.delete(f"/api/v1/conversations/{room}/members/{carol.id}")
    assert response.status_code in (200, 204), response.text

    events = await receiver.wait_for_count(room, 10)
    assert [kind for kind, _ in events] == [
        "conversation.created", "member.added", "message.created", "message.edited",
        "reaction.added", "reaction.removed", "message.deleted", "member.added",
        "member.role_changed", "member.removed"]
    versions = [version for _, version in events]
    assert versions == sorted(versions)
    assert versions[2:7] == list(range(versions[2], versions[2] + 5))  # each took one
    assert receiver.unverified == 0
    got = {e.type: e.data for e in receiver.unique(room)}
    assert got["conversation.created"]["conversation"]["id"] == room
    assert got["message.created"]["message"]["content"] == "hello"
    assert got["message.created"]["message"]["id"] == message["id"]
    assert got["message.edited"]["message"]["content"] == "hello!"
    assert got["reaction.added"] == {"conversation_id": room, "version": versions[4],
                                     "message_id": message["id"], "user_id": alice.id,
                                     "emoji": "👍"}
    assert got["message.deleted"]["deleted_by"] == alice.id
    assert got["member.role_changed"]["role"] == "moderator"
    assert got["member.removed"] == {"conversation_id": room, "version": versions[-1],
                                     "user_id": carol.id, "role": None}


async def test_a_rejected_call_is_missed(hooked: RunningServer,
                                         receiver: WebhookReceiver) -> None:
    """`call.missed` for a call the callee rejected, with the call object."""
    server = hooked
    alice, bob = server.user("alice"), server.user("bob")
    direct = (await server.create_conversation(alice, kind="direct", members=[bob]))["id"]
    a, b = await server.connect(alice), await server.connect(bob)
    call_id = str(uuid.uuid4())
    reply = await a.request("CallOffer", conversation_id=direct, call_id=call_id,
                            sdp=OFFER_SDP, call_type="audio", timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    await b.expect("CallOffer", timeout=TIMEOUT, call_id=call_id)
    reply = await b.request("CallReject", call_id=call_id, timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    events = await receiver.wait_for_count(direct, 2)
    assert [kind for kind, _ in events] == ["conversation.created", "call.missed"]
    missed = receiver.unique(direct)[1].data["call"]
    assert (missed["id"], missed["end_reason"], missed["caller_id"]) == (
        call_id, "rejected", alice.id)


async def test_a_failed_send_emits_nothing(hooked: RunningServer,
                                           receiver: WebhookReceiver) -> None:
    """A change refused (a read-only member's send) stores no event."""
    server = hooked
    alice, bob = server.user("alice"), server.user("bob")
    room = (await server.create_conversation(alice))["id"]
    assert await set_role(server, alice, room, bob, "read_only") in (200, 201)
    b = await joined(server, bob, room)
    reply = await b.request("SendMessage", conversation_id=room, content="no",
                            timeout=TIMEOUT)
    assert reply["type"] == "Error", reply
    a = await joined(server, alice, room)
    await send(a, room, "yes")
    events = await receiver.wait_for_count(room, 3)
    assert [kind for kind, _ in events] == ["conversation.created", "member.added",
                                            "message.created"]


async def metric(base_url: str, name: str) -> float:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        return sample((await http.get("/metrics")).text, name) or 0.0


async def until_metric(base_url: str, name: str, at_least: float) -> None:
    deadline = time.monotonic() + 30
    while await metric(base_url, name) < at_least:
        assert time.monotonic() < deadline, f"{name} stayed below {at_least}"
        await asyncio.sleep(0.1)


async def send_some(client: ChatClient, rooms: list[str], n: int, tag: str) -> list[str]:
    """`n` messages into each room, alternating; their ids."""
    ids = []
    for i in range(n):
        for room in rooms:
            ids.append((await send(client, room, f"{tag}-{i}"))["id"])
    return ids


def created_in_order(receiver: WebhookReceiver, room: str) -> list[str]:
    """The ids of the room's `message.created` events, asserting their versions rise."""
    events = [e for e in receiver.unique(room) if e.type == "message.created"]
    versions = [e.data["version"] for e in events]
    assert versions == sorted(set(versions)), versions
    return [e.data["message"]["id"] for e in events]


async def test_failures_timeouts_and_absence_lose_nothing(
        start_server: StartServer, receiver: WebhookReceiver) -> None:
    """The receiver answers 500, then times out, then is down: once it is back, every
    event arrives, in order per conversation."""
    async with start_server(**quick(receiver, webhook_timeout=0.3)) as server:
        alice = server.user("alice")
        rooms = [(await server.create_conversation(alice))["id"] for _ in range(2)]
        client = await server.connect(alice)
        receiver.mode = "fail"
        sent = await send_some(client, rooms, 3, "failing")
        await until_metric(server.base_url, "hubbub_webhook_retried_total", 4)
        receiver.mode, receiver.slow_s = "slow", 1.0
        retried = await metric(server.base_url, "hubbub_webhook_retried_total")
        sent += await send_some(client, rooms, 3, "slow")
        await until_metric(server.base_url, "hubbub_webhook_retried_total", retried + 3)
        await receiver.down()
        retried = await metric(server.base_url, "hubbub_webhook_retried_total")
        sent += await send_some(client, rooms, 3, "down")
        await until_metric(server.base_url, "hubbub_webhook_retried_total", retried + 3)
        await until_metric(server.base_url, "hubbub_webhook_pending", 1)
        await until_metric(server.base_url, "hubbub_webhook_oldest_pending_seconds", 0.5)
        receiver.mode = "ok"
        await receiver.up()
        for room in rooms:
            await receiver.wait_for_count(room, 10)
        delivered = [mid for room in rooms for mid in created_in_order(receiver, room)]
        assert sorted(delivered) == sorted(sent)
        assert receiver.unverified == 0
        await until_metric(server.base_url, "hubbub_webhook_delivered_total", 20)


async def test_dead_letters_are_listed_and_replayed(
        start_server: StartServer, receiver: WebhookReceiver, backend: Backend) -> None:
    """Past the retry window an event is dead: `hubbub webhooks dead-letters` lists it,
    `replay` sends it again, in order."""
    receiver.mode = "fail"
    async with start_server(**quick(receiver, webhook_retry_for=0.3)) as server:
        alice = server.user("alice")
        room = (await server.create_conversation(alice))["id"]
        client = await server.connect(alice)
        ids = await send_some(client, [room], 2, "doomed")
        # The room's own three (the database is shared: another test's events, such as a
        # `message.undelivered` owed from before this server started, may die too).
        listing = ""

        async def room_dead() -> bool:
            nonlocal listing
            listing = await hubbub(backend, "webhooks", "dead-letters")
            return sum(room in line for line in listing.splitlines()) >= 3

        await until(room_dead, "the room's three events are dead", every=0.2)
        mine = [line for line in listing.splitlines() if room in line]
        assert len(mine) == 3, listing
        assert '"last_error":"HTTP 500"' in mine[0]
        assert '"type":"conversation.created"' in mine[0]
        assert "doomed" not in listing  # content stays in the store
        receiver.mode = "ok"
        replayed = await hubbub(backend, "webhooks", "replay", "--all")
        assert replayed.startswith("replayed ")
        await receiver.wait_for_count(room, 3)
        assert created_in_order(receiver, room) == ids
        refused = await hubbub(backend, "webhooks", "replay", expect=2)
        assert "name event ids, or --all" in refused


async def hubbub(backend: Backend, *args: str, expect: int = 0) -> str:
    """Run the `hubbub` command on the test's database; its output (stdout and stderr)."""
    env = {**os.environ, "HUBBUB_DATABASE_URL": backend.database_url,
           "HUBBUB_LOG_LEVEL": "warning"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hubbub", *args, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == expect, out.decode()
    return out.decode()


async def test_events_pending_at_a_sigkill_go_out_after_the_restart(
        backend: Backend, receiver: WebhookReceiver, tmp_path: Path) -> None:
    """hubbub killed with events stored but not delivered sends them once it is back."""
    await receiver.down()
    env = {"HUBBUB_WEBHOOK_URL": receiver.url, "HUBBUB_WEBHOOK_SECRET": receiver.secret,
           "HUBBUB_WEBHOOK_TIMEOUT": "0.5", "HUBBUB_WEBHOOK_RETRY_BASE": "0.05",
           "HUBBUB_WEBHOOK_RETRY_MAX_DELAY": "0.3", "HUBBUB_WEBHOOK_POLL_INTERVAL": "0.1"}
    process = for_backend(backend, tmp_path, env)
    await process.start()
    try:
        alice = process.user("alice")
        async with process.http(alice) as http:
            response = await http.post("/api/v1/conversations",
                                       json={"kind": "channel", "name": "room",
                                             "member_ids": []})
        assert response.status_code in (200, 201), response.text
        room = response.json()["id"]
        client = await process.connect(alice)
        ids = await send_some(client, [room], 5, "before-kill")
        await process.close_clients()
        await process.kill()
        await receiver.up()
        await process.start()
        await receiver.wait_for_count(room, 6, timeout=60)
        assert created_in_order(receiver, room) == ids
    finally:
        await process.close_clients()
        await process.stop()


async def test_three_instances_never_send_an_event_twice_at_once(
        receiver: WebhookReceiver) -> None:
    """Three instances on one PostgreSQL dispatch the same outbox: each event is delivered,
    in order per conversation, and never while another request for it, or for an earlier
    event of its conversation, is in flight."""
    # One conversation at a time per instance: the three must share the rooms.
    hooks = quick(receiver, webhook_concurrency=1)
    async with postgres_database() as db, run_cluster(db.url, 3, **hooks) as cluster:
        alice = cluster.user("alice")
        rooms = [(await cluster[0].create_conversation(alice))["id"] for _ in range(4)]
        clients = [await cluster.connect(i, alice) for i in range(3)]
        receiver.mode = "fail"  # a backlog first, so the three claim from it together
        batches = await asyncio.gather(*(send_some(c, rooms, 4, f"i{n}")
                                         for n, c in enumerate(clients)))
        receiver.mode = "ok"
        batches += await asyncio.gather(*(send_some(c, rooms, 4, f"j{n}")
                                          for n, c in enumerate(clients)))
        for room in rooms:
            await receiver.wait_for_count(room, 25, timeout=60)
        delivered = [mid for room in rooms for mid in created_in_order(receiver, room)]
        assert sorted(delivered) == sorted(mid for batch in batches for mid in batch)
        assert receiver.concurrent_same_event == 0
        assert receiver.concurrent_same_conversation == 0
        assert receiver.unverified == 0
        deadline = time.monotonic() + 30
        while True:  # each counts a delivery once the receiver's answer is back
            counts = [await metric(s.base_url, "hubbub_webhook_delivered_total")
                      for s in cluster.instances]
            if sum(counts) >= 100 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert sum(counts) >= 100, counts
        assert sum(1 for c in counts if c > 0) >= 2, counts  # they shared the work


async def test_members_without_a_connection_are_named_undelivered(
        start_server: StartServer, receiver: WebhookReceiver) -> None:
    """`HUBBUB_OFFLINE_GRACE` after a message, `message.undelivered` names the accepted
    members other than the sender with no open connection: not the connected, not the
    sender, not one who never accepted."""
    async with start_server(**quick(receiver, offline_grace=1.0)) as server:
        alice, bob, carol, dave = (server.user(n) for n in ("alice", "bob", "carol", "dave"))
        room = (await server.create_conversation(alice))["id"]
        a = await joined(server, alice, room)
        await joined(server, bob, room)
        c = await joined(server, carol, room)
        assert await set_role(server, alice, room, dave, "member") in (200, 201)
        await c.close()
        await asyncio.sleep(0.2)  # the server notices the close at once; a margin
        message = await send(a, room, "anyone there?")
        kinds = [kind for kind, _ in await receiver.wait_for_count(room, 6)]
        assert kinds[-2:] == ["message.created", "message.undelivered"]
        undelivered = receiver.unique(room)[-1].data
        assert undelivered == {"conversation_id": room, "version": message["version"],
                               "message_id": message["id"], "sender_id": alice.id,
                               "user_ids": [carol.id], "mentioned": []}
