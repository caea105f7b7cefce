"""Two hubbub processes on a three-primary Redis Cluster (`redis+cluster://`).

Messages cross instances over sharded pub/sub (each conversation's channel on the primary
of its slot), and what the instances count together — presence, typing states, rate
limits — works through the cluster: every counting key under one hash tag, so each
counting script stays on one slot. A primary that restarts gets its channels back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from tests.support.across import assert_pings_limited, assert_presence_counted, made_room
from tests.support.client import ChatClient
from tests.support.cluster import postgres_database
from tests.support.flows import TIMEOUT
from tests.support.process import ServerProcess
from tests.support.redis_servers import RedisClusterNodes, hubbub_on, redis_cluster
from tests.support.server import User
from tests.support.waiting import until

pytestmark = pytest.mark.asyncio(loop_scope="session")

RATE = 10  # "other actions" per second and burst, for one user across the whole cluster
ROOMS = 12  # enough conversations that their channels land on more than one primary
# A restarted primary: formed again within seconds; the bus retries within its 2 s cap.
RECOVERY_WITHIN_S = 45.0


@dataclass
class Deployment:
    redis: RedisClusterNodes
    instances: list[ServerProcess]

    async def room(self, owner: User, *members: User) -> str:
        return await made_room(self.instances[0], owner, list(members), name="on a cluster")

    async def joined(self, index: int, user: User, room: str) -> ChatClient:
        client = await self.instances[index].connect(user)
        reply = await client.request("JoinConversation", conversation_id=room,
                                     timeout=TIMEOUT)
        assert reply["type"] == "ActionConfirmed", reply
        return client


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def deployment(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    workdir = tmp_path_factory.mktemp("redis-cluster")
    async with postgres_database() as database, redis_cluster(workdir) as redis, hubbub_on(
            redis.url, database.url, workdir, HUBBUB_RATE_LIMITS="on",
            HUBBUB_OTHER_RATE=str(RATE), HUBBUB_OTHER_BURST=str(RATE),
            HUBBUB_HANDSHAKE_RATE="1000", HUBBUB_HANDSHAKE_BURST="1000") as instances:
        yield Deployment(redis, instances)


async def test_messages_cross_instances_over_sharded_pubsub(deployment: Deployment) -> None:
    """A message sent through one instance reaches a member on the other, in each of many
    conversations, whose channels the cluster spreads over several primaries."""
    for _ in range(ROOMS):  # a pair of users each: the rate limits stay out of the way
        alice, bob = deployment.instances[0].user(), deployment.instances[1].user()
        room = await deployment.room(alice, bob)
        sender = await deployment.joined(0, alice, room)
        receiver = await deployment.joined(1, bob, room)
        reply = await sender.request("SendMessage", conversation_id=room, content="over",
                                     timeout=TIMEOUT)
        assert reply["type"] == "ActionConfirmed", reply
        got = await receiver.expect("NewMessage", timeout=TIMEOUT)
        assert got["message"]["id"] == reply["message"]["id"]
    redis = deployment.redis
    holding = [len(await redis.shard_channels(i)) for i in range(len(redis.nodes))]
    assert sum(1 for n in holding if n) >= 2, f"shard channels per primary: {holding}"
    assert sum(holding) >= ROOMS  # instance 1 subscribed every room (some with more)


async def test_counting_keys_share_one_slot(deployment: Deployment) -> None:
    """Every key of the presence counts lives on one primary (one hash tag), so the
    counting scripts, which reach across users and instances, never cross slots."""
    alice = deployment.instances[0].user("alice")
    await deployment.instances[0].connect(alice)
    await deployment.instances[1].connect(alice)
    owners = []
    for index in range(len(deployment.redis.nodes)):
        client = deployment.redis.client(index)
        try:
            keys = [key async for key in client.scan_iter(match="{hubbub-ha-*}:*")]
        finally:
            await client.aclose()
        if keys:
            owners.append(index)
            assert any(b":inst:alive:" in key for key in keys), keys
            assert any(alice.id.encode() in key for key in keys), keys
    assert len(owners) == 1, f"counting keys on primaries {owners}"


async def test_presence_is_counted_across_instances(deployment: Deployment) -> None:
    """A user online through both instances goes offline only when the last closes."""
    watcher, dave = deployment.instances[0].user("watcher"), deployment.instances[1].user("dave")
    room = await deployment.room(dave, watcher)
    watching = await deployment.joined(0, watcher, room)
    await assert_presence_counted(
        watching, dave.id, lambda index: deployment.instances[index % 2].connect(dave))


async def test_typing_reaches_the_other_instance_once(deployment: Deployment) -> None:
    """A user typing through both instances has one state: one `is_typing:true` for the
    watcher on the other side, and one `false` when it stops."""
    alice, bob = deployment.instances[0].user("alice"), deployment.instances[1].user("bob")
    room = await deployment.room(alice, bob)
    tabs = [await deployment.joined(0, alice, room), await deployment.joined(1, alice, room)]
    watcher = await deployment.joined(1, bob, room)
    for tab in tabs:
        reply = await tab.request("Typing", conversation_id=room, is_typing=True,
                                  timeout=TIMEOUT)
        assert reply["type"] == "ActionConfirmed", reply
    started = await watcher.expect("UserTyping", timeout=TIMEOUT, user_id=alice.id)
    assert started["is_typing"] is True
    reply = await tabs[1].request("Typing", conversation_id=room, is_typing=False,
                                  timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    stopped = await watcher.expect("UserTyping", timeout=TIMEOUT, user_id=alice.id,
                                   is_typing=False)
    assert stopped["conversation_id"] == room
    assert len(watcher.all("UserTyping")) == 2, watcher.all("UserTyping")


async def test_a_rate_limit_counts_both_instances(deployment: Deployment) -> None:
    """One user pinging through both instances gets RATE through in total (plus what
    refills meanwhile), not twice as many."""
    user = deployment.instances[0].user("pinger")
    await assert_pings_limited([await instance.connect(user)
                                for instance in deployment.instances], RATE)


async def test_a_restarted_primary_gets_its_channels_back(deployment: Deployment) -> None:
    """A primary killed and started again (its slots kept in its nodes.conf): the bus
    replans its subscriber connections, subscribes the room's channel there again, and
    messages flow live between the instances, with no restart of hubbub."""
    alice, bob = deployment.instances[0].user(), deployment.instances[1].user()
    room = await deployment.room(alice, bob)
    sender = await deployment.joined(0, alice, room)
    receiver = await deployment.joined(1, bob, room)
    redis = deployment.redis
    owners = [i for i in range(len(redis.nodes)) if await _subscribed_on(redis, i, room)]
    assert len(owners) == 1, f"the room's channel is on primaries {owners}"
    owner = owners[0]
    await redis.nodes[owner].kill()
    await redis.nodes[owner].start()
    await redis.formed()
    await until(lambda: _subscribed_on(redis, owner, room),
                "instance 1 subscribes the room on the restarted primary again",
                within=RECOVERY_WITHIN_S)
    await until(lambda: _delivered(sender, receiver, room), "a message crosses again",
                within=RECOVERY_WITHIN_S, every=0.5)


async def _subscribed_on(redis: RedisClusterNodes, index: int, room: str) -> bool:
    return any(room.encode() in channel for channel in await redis.shard_channels(index))


async def _delivered(sender: ChatClient, receiver: ChatClient, room: str) -> bool:
    """Send one message; whether its event reached the receiver within a second."""
    reply = await sender.request("SendMessage", conversation_id=room, content="again",
                                 timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    message_id = reply["message"]["id"]
    deadline = asyncio.get_running_loop().time() + 1.0
    while asyncio.get_running_loop().time() < deadline:
        if any(f["type"] == "NewMessage" and f["message"]["id"] == message_id
               for f in receiver.frames):
            return True
        await asyncio.sleep(0.02)
    return False
