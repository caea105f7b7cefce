"""Two hubbub processes on a Sentinel-watched master with one replica (`redis+sentinel://`),
under steady traffic, through a failover: one the sentinels are told to make, and one after
the master is killed.

Nothing restarts hubbub: its connections find the new master through the sentinels. Sends
are acknowledged throughout (persistence does not need Redis), every acknowledged message
is stored once and returned by `SyncMessages`, every client ends up with an event of each,
and what the instances share in Redis (tickets here) works through the new master.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.exceptions import RedisError

from hubbub.client import AuthenticationError
from tests.support.across import Sender, made_room
from tests.support.client import ChatClient
from tests.support.cluster import postgres_database
from tests.support.flows import TIMEOUT
from tests.support.process import ServerProcess
from tests.support.redis_servers import SentinelGroup, command, hubbub_on, redis_sentinels
from tests.support.waiting import until

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Acknowledged sends per sender before and after the failover: traffic on both sides.
PER_PHASE = 20
# From SENTINEL FAILOVER to a message delivered live again: the sentinels switch within a
# second or two, the bus reconnects within its 2 s backoff cap, the repair check runs
# every 2 s; the rest is margin for a loaded machine.
RECOVERY_WITHIN_S = 45.0


@dataclass
class Deployment:
    group: SentinelGroup
    instances: list[ServerProcess]


@pytest_asyncio.fixture(loop_scope="session")
async def deployment(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    workdir = tmp_path_factory.mktemp("redis-sentinel")
    async with postgres_database() as database, redis_sentinels(workdir) as group, hubbub_on(
            group.url, database.url, workdir, HUBBUB_LOG_LEVEL="info") as instances:
        yield Deployment(group, instances)


async def sync_all(client: ChatClient, room: str) -> list[dict[str, Any]]:
    """Every message of the room by `SyncMessages` from version 0, page after page."""
    messages: list[dict[str, Any]] = []
    since = 0
    while True:
        chunk = await client.request("SyncMessages", conversation_id=room, since_version=since,
                                     limit=500, timeout=TIMEOUT)
        assert chunk["type"] == "SyncChunk", chunk
        messages += chunk["messages"]
        if not chunk["has_more"]:
            return messages
        since = chunk["last_version"]


def announced(client: ChatClient) -> set[str]:
    return {f["message"]["id"] for f in client.frames if f["type"] == "NewMessage"}


def covers(acked: set[str], client: ChatClient) -> bool:
    return acked <= announced(client)


async def ready(instance: ServerProcess) -> bool:
    async with instance.http() as http:
        response = await http.get("/readyz")
    return response.status_code == 200 and response.json()["status"] == "ok"


async def room_with_clients(deployment: Deployment) -> tuple[str, list[ChatClient]]:
    """A room of four users, two connected through each instance, all subscribed."""
    first, second = deployment.instances
    users = [first.user(name) for name in ("alice", "bob", "carol", "dave")]
    room = await made_room(first, users[0], users[1:], name="failover")
    clients = []
    for index, user in enumerate(users):
        client = await (first if index % 2 == 0 else second).connect(user)
        reply = await client.request("JoinConversation", conversation_id=room,
                                     timeout=TIMEOUT)
        assert reply["type"] == "ActionConfirmed", reply
        clients.append(client)
    return room, clients


async def channels(port: int, prefix: str) -> int:
    """How many of the deployment's bus channels the server on `port` has subscribers on
    (none on a server that is gone)."""
    client = Redis(host="127.0.0.1", port=port, socket_connect_timeout=2)
    try:
        return len(await command(client, "PUBSUB", "CHANNELS", f"{prefix}:*"))
    except (OSError, RedisError):
        return 0
    finally:
        await client.aclose()


async def bus_moved(deployment: Deployment, old: int, new: int) -> bool:
    """Whether every instance's bus left the demoted master for the new one: a demoted
    master still serves pub/sub, so a bus left there would hear only those left with it."""
    prefix = deployment.instances[0].extra_env["HUBBUB_REDIS_PREFIX"]
    return await channels(old, prefix) == 0 and await channels(new, prefix) > 0


async def ticket_crosses(deployment: Deployment) -> bool:
    """A ws-ticket issued by instance 0 opens a socket on instance 1: only through Redis."""
    first, second = deployment.instances
    user = first.user("ticket")
    async with first.http(user) as http:
        response = await http.post("/api/v1/ws-tickets")
    assert response.status_code == 201, response.text
    try:
        crossed = await ChatClient.open(f"{second.ws_url}?ticket={response.json()['ticket']}")
    except AuthenticationError:
        return False
    await crossed.close()
    return True


@pytest.mark.parametrize("kill", [False, True], ids=["sentinel-failover", "master-killed"])
async def test_a_failover_under_traffic_loses_nothing_acknowledged(
        deployment: Deployment, kill: bool) -> None:
    """Through `SENTINEL FAILOVER`, or the master's SIGKILL, under traffic, without
    restarting hubbub: sends keep
    being acknowledged, messages reach the other instance live again within a bound,
    Redis-backed state works through the new master, and afterwards SyncMessages returns
    every acknowledged message, stored once, and every client has an event of each."""
    pids = [instance.process.pid for instance in deployment.instances if instance.process]
    room, clients = await room_with_clients(deployment)
    senders = [Sender(clients[0], room), Sender(clients[1], room)]
    stop = asyncio.Event()
    traffic = [asyncio.create_task(sender.run(stop)) for sender in senders]
    try:
        await until(lambda: all(len(s.acked) >= PER_PHASE for s in senders),
                    "both senders have messages acknowledged before the failover")
        old_master = await deployment.group.master_port()
        started = time.monotonic()
        new_master = await deployment.group.failover(kill=kill)
        switched_s = time.monotonic() - started
        assert new_master != old_master
        # A message acknowledged from now on, through instance 0, heard on instance 1.
        after = len(senders[0].acked)
        await until(lambda: bool(announced(clients[3]) & {
            m["id"] for m in list(senders[0].acked.values())[after:]}),
            "a message sent after the failover reaches the other instance",
            within=RECOVERY_WITHIN_S)
        recovered_s = time.monotonic() - started
        await until(lambda: bus_moved(deployment, old_master, new_master),
                    "the bus subscribes on the new master only", within=RECOVERY_WITHIN_S)
        for instance in deployment.instances:
            try:
                await until(partial(ready, instance), "both instances are ready again",
                            within=RECOVERY_WITHIN_S)
            except AssertionError as exc:
                raise AssertionError(f"{exc}; its log:\n{instance.log_tail()}") from None
        await until(lambda: ticket_crosses(deployment),
                    "a ticket of instance 0 opens a socket on instance 1",
                    within=RECOVERY_WITHIN_S)
        marks = [len(s.acked) for s in senders]
        await until(lambda: all(len(s.acked) >= n + PER_PHASE for s, n in zip(
            senders, marks, strict=True)), "both senders go on after the failover")
    finally:
        stop.set()
        await asyncio.gather(*traffic)
    how = "master killed" if kill else "SENTINEL FAILOVER"
    print(f"{how}: sentinels named the new master after {switched_s:.2f} s; a message "
          f"reached the other instance live again {recovered_s:.2f} s after it; "
          f"{sum(len(s.acked) for s in senders)} messages acknowledged")

    acked = {m["id"] for s in senders for m in s.acked.values()}
    synced = await sync_all(clients[2], room)
    keys = Counter((m["sender_id"], m["client_message_id"]) for m in synced)
    assert not [k for k, n in keys.items() if n > 1], "a message was stored twice"
    assert acked <= {m["id"] for m in synced}, "SyncMessages misses an acknowledged message"
    assert len(synced) == len(acked)
    for client in clients:
        await until(partial(covers, acked, client),
                    f"{client.user_id} has an event of every acknowledged message",
                    within=RECOVERY_WITHIN_S)
    assert [instance.process.pid for instance in deployment.instances
            if instance.process and instance.process.returncode is None] == pids
