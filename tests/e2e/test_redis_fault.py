"""Redis dies and comes back under steady traffic (persist first, publish second).

Two instances share PostgreSQL and a private `redis-server`. While Redis is down, sends are
still acknowledged and stored (persistence does not need Redis) and `/readyz` says
`degraded` with 200 — not 503, which would take every instance out of the load balancer at
once (docs/DECISIONS.md, "Operations") — and `/metrics` says the bus is down; after the
restart the bus re-subscribes, the hubs repair what the bus lost from the store
(transport/repair.py), and every client holds exactly the server's state from the events it
received alone — without a gap to sync — with every acknowledged message stored once.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from typing import Any

import pytest

from tests.support.across import Sender
from tests.support.client import ChatClient
from tests.support.cluster import Cluster, postgres_database, run_cluster
from tests.support.flows import all_messages, joined
from tests.support.redis_server import RedisProcess
from tests.support.replica import CHANGE_EVENTS, Replica, history_state
from tests.support.server import RunningServer
from tests.support.waiting import until

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Long enough for a few hundred sends per phase on a loaded machine, short enough to keep
# the test well under a minute.
PHASE_S = 1.5


async def readiness(instance: RunningServer) -> tuple[int, dict[str, Any]]:
    async with instance.http() as http:
        response = await http.get("/readyz")
    return response.status_code, response.json()


async def all_report(cluster: Cluster, status: str) -> bool:
    """Whether every instance's `/readyz` body says `status` (each answering 200)."""
    answers = [await readiness(instance) for instance in cluster.instances]
    return all(code == 200 and body["status"] == status for code, body in answers)


async def bus_healthy_metric(instance: RunningServer) -> float:
    async with instance.http() as http:
        text = (await http.get("/metrics")).text
    return next(float(line.split()[1]) for line in text.splitlines()
                if line.startswith("hubbub_bus_healthy "))


def announced(client: ChatClient) -> set[str]:
    """The ids of the messages whose `NewMessage` reached the client."""
    return {f["message"]["id"] for f in client.frames if f["type"] == "NewMessage"}


def has_every(client: ChatClient, ids: set[str]) -> bool:
    """Whether the client has a `NewMessage` of each of `ids`."""
    return ids <= announced(client)


async def test_clients_converge_after_redis_restarts_under_traffic(redis: RedisProcess) -> None:
    """Sends keep being acknowledged through a Redis outage, /readyz reports it as degraded
    while keeping every instance in the load balancer, and after the restart every client
    holds exactly the stored state from its events, each acknowledged message stored once,
    no event delivered twice and no gap left to sync."""
    async with postgres_database() as database, run_cluster(
            database.url, 2, redis_url=redis.url, rate_limits=False) as cluster:
        alice, bob, carol, dave = (cluster.user(n) for n in ("alice", "bob", "carol", "dave"))
        room = (await cluster[0].create_conversation(alice, name="outage",
                                                     members=[bob, carol, dave]))["id"]
        clients = [await joined(cluster[0], alice, room), await joined(cluster[1], bob, room),
                   await joined(cluster[0], carol, room), await joined(cluster[1], dave, room)]
        senders = [Sender(clients[0], room), Sender(clients[1], room)]
        stop = asyncio.Event()
        traffic = [asyncio.create_task(sender.run(stop)) for sender in senders]
        try:
            await asyncio.sleep(PHASE_S)
            before_outage = sum(len(s.acked) for s in senders)

            await redis.kill()
            # Before: 503 naming the bus, on every instance at once (an empty load balancer).
            await until(lambda: all_report(cluster, "degraded"), "both instances are degraded")
            status, body = await readiness(cluster[1])
            assert (status, body) == (200, {"status": "degraded", "degraded": ["bus"]})
            assert await bus_healthy_metric(cluster[0]) == 0
            await asyncio.sleep(PHASE_S)
            during_outage = sum(len(s.acked) for s in senders) - before_outage
            assert all(not task.done() for task in traffic), "a sender failed during the outage"

            await redis.start()
            await until(lambda: all_report(cluster, "ok"), "both instances are ready again")
            assert await bus_healthy_metric(cluster[0]) == 1
            await asyncio.sleep(PHASE_S)
        finally:
            stop.set()
            await asyncio.gather(*traffic)
        assert before_outage > 0
        assert during_outage > 0, "no send was acknowledged while Redis was down"

        acked = {m["id"]: m for s in senders for m in s.acked.values()}
        stored = await all_messages(clients[2], room)
        keys = Counter((m["sender_id"], m["client_message_id"]) for m in stored)
        assert not [k for k, n in keys.items() if n > 1], "a message was stored twice"
        assert set(acked) <= {m["id"] for m in stored}, "an acknowledged message is missing"
        assert len(stored) == len(acked)

        truth = history_state(stored)
        for client in clients:
            await until(functools.partial(has_every, client, set(acked)),
                        f"{client.user_id} has an event of every acknowledged message")
        repairs = 0
        for client in clients:
            events = [f for f in client.frames if f["type"] in CHANGE_EVENTS]
            keys_seen = Counter((f["type"], (f.get("message") or f)["id"] if "message" in f
                                 else f["message_id"], f.get("version")) for f in events)
            assert not [k for k, n in keys_seen.items() if n > 1], "an event arrived twice"
            replica = Replica(room)
            for frame in events:
                if not replica.offer(frame):
                    repairs += 1
                    await replica.catch_up(client)
                    replica.offer(frame)
            assert replica.state() == truth, f"{client.user_id} diverged"
        repaired = [instance.internals.hub.repair_stats for instance in cluster.instances]
        print(f"{len(acked)} messages acknowledged, {during_outage} during the outage; "
              f"{sum(r.events for r in repaired)} events repaired by the servers "
              f"(runs {[r.runs for r in repaired]}), {repairs} gaps left to the clients")
        # Before the servers repaired by themselves, every client saw the outage's gap and
        # had to sync: now the events alone bring each one to the stored state.
        assert repairs == 0, "a client was left a gap to repair with SyncMessages"
        assert all(r.events > 0 for r in repaired), "the outage lost no event to repair"
        assert all(instance.internals.bus.healthy for instance in cluster.instances)
        await cluster.close_clients()
