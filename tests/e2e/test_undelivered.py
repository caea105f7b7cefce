"""`message.undelivered` is durable (services/undelivered.py, docs/WEBHOOKS.md): a message
sent just before a SIGKILL is still checked after the restart, once; on three instances
sharing PostgreSQL and Redis the check names exactly the offline, unmuted, accepted
members, and the instances sweeping at once store each message's event exactly once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Backend
from tests.e2e.test_webhooks import quick
from tests.support.across import made_room
from tests.support.cluster import postgres_database, run_cluster
from tests.support.flows import TIMEOUT, joined, send, set_role
from tests.support.process import for_backend
from tests.support.webhook_receiver import Received, WebhookReceiver

pytestmark = pytest.mark.asyncio(loop_scope="session")

GRACE_S = 3.0


def undelivered(receiver: WebhookReceiver, conversation_id: str) -> list[Received]:
    """Each `message.undelivered` event of the conversation once (by `webhook-id`)."""
    return [e for e in receiver.unique(conversation_id) if e.type == "message.undelivered"]


async def test_a_message_sent_just_before_a_sigkill_is_checked_after_the_restart(
        backend: Backend, receiver: WebhookReceiver, tmp_path: Path) -> None:
    """hubbub killed right after a message committed, well within the grace, checks it
    once it is back: one `message.undelivered` naming the offline member, delivered
    once, not before the grace."""
    env = {"HUBBUB_WEBHOOK_URL": receiver.url, "HUBBUB_WEBHOOK_SECRET": receiver.secret,
           "HUBBUB_WEBHOOK_RETRY_BASE": "0.05", "HUBBUB_WEBHOOK_RETRY_MAX_DELAY": "0.3",
           "HUBBUB_WEBHOOK_POLL_INTERVAL": "0.1", "HUBBUB_OFFLINE_GRACE": str(GRACE_S)}
    process = for_backend(backend, tmp_path, env)
    await process.start()
    try:
        alice, bob = process.user("alice"), process.user("bob")
        room = await made_room(process, alice, [], kind="channel")
        b = await process.connect(bob)
        reply = await b.request("JoinConversation", conversation_id=room, timeout=TIMEOUT)
        assert reply["type"] == "ActionConfirmed", reply
        await b.close()
        await asyncio.sleep(0.2)  # the server notices the close at once; a margin
        a = await process.connect(alice)
        sent_at = time.monotonic()
        message = await send(a, room, "are you there?")
        await process.kill()
        assert time.monotonic() - sent_at < GRACE_S / 2
        await process.close_clients()
        await process.start()
        await receiver.wait_until(lambda: bool(undelivered(receiver, room)), timeout=60,
                                  what="message.undelivered")
        await asyncio.sleep(GRACE_S)  # time enough for a second one to show up
        [event] = undelivered(receiver, room)
        assert event.data == {"conversation_id": room, "version": message["version"],
                              "message_id": message["id"], "sender_id": alice.id,
                              "user_ids": [bob.id], "mentioned": []}
        assert event.at - sent_at >= GRACE_S
        assert [e.id for e in receiver.events].count(event.id) == 1
        assert receiver.unverified == 0
    finally:
        await process.close_clients()
        await process.stop()


async def test_three_instances_check_each_message_once_and_exactly(
        receiver: WebhookReceiver) -> None:
    """Three instances on one PostgreSQL and Redis, every one sweeping: in one room the
    sender, a member connected to another instance, one who reconnected to a third within
    the grace, one who muted, and one who never accepted are not named, the offline one
    is; in twelve more rooms, messages sent through all three instances at once each get
    exactly one event, naming their offline member."""
    hooks = quick(receiver, offline_grace=1.5)
    async with postgres_database() as db, run_cluster(db.url, 3, **hooks) as cluster:
        names = ("alice", "bob", "carol", "dave", "erin", "frank", "olive")
        alice, bob, carol, dave, erin, frank, olive = (cluster.user(n) for n in names)
        room = (await cluster[0].create_conversation(alice))["id"]
        a = await joined(cluster[0], alice, room)
        b = await joined(cluster[1], bob, room)  # online throughout
        away = [await joined(cluster[i], u, room)
                for i, u in ((2, carol), (1, dave), (2, erin))]
        muted = await away[2].request("UpdateMembership", conversation_id=room, muted=True,
                                      timeout=TIMEOUT)
        assert muted["type"] == "ActionConfirmed", muted
        assert await set_role(cluster[0], alice, room, frank, "member") in (200, 201)
        rooms = [(await cluster[i % 3].create_conversation(alice))["id"] for i in range(12)]
        o = await cluster.connect(2, olive)
        for other in rooms:
            reply = await o.request("JoinConversation", conversation_id=other,
                                    timeout=TIMEOUT)
            assert reply["type"] == "ActionConfirmed", reply
        for client in (*away, o):
            await client.close()
        await asyncio.sleep(0.3)  # each instance notices its close at once; a margin

        first = await send(a, room, "where is everyone?", mentions=[carol.id, erin.id])
        second = await send(b, room, "hello?")
        await joined(cluster[2], dave, room)  # back within the grace, on a third instance
        senders = [await cluster.connect(i, alice) for i in range(3)]

        async def send_through_each(other: str) -> list[dict[str, Any]]:
            return list(await asyncio.gather(*(send(s, other, f"to olive {i}")
                                               for i, s in enumerate(senders))))

        sent = dict(zip(rooms, await asyncio.gather(*(send_through_each(r) for r in rooms)),
                        strict=True))
        expected = 2 + 3 * len(rooms)

        def arrived() -> list[Received]:
            return [e for r in (room, *rooms) for e in undelivered(receiver, r)]

        await receiver.wait_until(lambda: len(arrived()) >= expected, timeout=60,
                                  what=f"{expected} message.undelivered")
        await asyncio.sleep(2.0)  # more than a grace: any duplicate would be stored by now
        assert [e.data for e in undelivered(receiver, room)] == [
            {"conversation_id": room, "version": first["version"],
             "message_id": first["id"], "sender_id": alice.id,
             "user_ids": [carol.id], "mentioned": [carol.id]},
            {"conversation_id": room, "version": second["version"],
             "message_id": second["id"], "sender_id": bob.id,
             "user_ids": [carol.id], "mentioned": []}]
        per_message = Counter(e.data["message_id"] for e in arrived())
        assert set(per_message.values()) == {1}, per_message
        for other, messages in sent.items():
            got = {e.data["message_id"]: e.data for e in undelivered(receiver, other)}
            assert sorted(got) == sorted(m["id"] for m in messages)
            for message in messages:
                assert got[message["id"]] == {
                    "conversation_id": other, "version": message["version"],
                    "message_id": message["id"], "sender_id": alice.id,
                    "user_ids": [olive.id], "mentioned": []}
        assert receiver.unverified == 0
