"""The SDK through real failures: the instance it is on killed, Redis restarted, the
client stalled until the server drops it. In each, the client ends with exactly the
stored state (FetchHistory), saw every version once and in order, and every `send`
resolved once with no message stored twice."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hubbub.client import Client
from tests.sdk.mirror import Mirror, assert_sent_once, chatter, converges, following, stored
from tests.sdk.support import FAST
from tests.support.cluster import postgres_database, run_cluster
from tests.support.process import ServerProcess
from tests.support.redis_server import RedisProcess
from tests.support.services import REDIS_URL, check_redis
from tests.support.waiting import until

pytestmark = pytest.mark.asyncio(loop_scope="session")


@contextlib.asynccontextmanager
async def three_processes(tmp_path: Path) -> AsyncIterator[list[ServerProcess]]:
    """Three `hubbub serve` processes on one PostgreSQL database and one Redis prefix."""
    prefix = await check_redis()
    async with postgres_database() as database:
        first = ServerProcess(database.url, tmp_path, extra_env={
            "HUBBUB_REDIS_URL": REDIS_URL, "HUBBUB_REDIS_PREFIX": prefix})
        processes = [first, *(ServerProcess(database.url, tmp_path,
                                            jwt_secret=first.jwt_secret,
                                            extra_env=first.extra_env) for _ in range(2))]
        try:
            for process in processes:  # one at a time: the first one migrates
                await process.start()
            yield processes
        finally:
            for process in processes:
                await process.kill()


async def test_the_instance_dies_under_the_client(tmp_path: Path) -> None:
    """SIGKILL the instance the client is on while it and another user send: it moves to
    the next URL, re-joins, syncs, resends what had no answer."""
    async with three_processes(tmp_path) as processes:
        alice, bob = processes[0].user("alice"), processes[0].user("bob")
        async with processes[1].http(bob) as http:
            assert (await http.get("/api/v1/users/me")).status_code == 200
        async with processes[1].http(alice) as http:
            created = await http.post("/api/v1/conversations", json={
                "kind": "group", "name": "failover", "member_ids": [bob.id]})
        room = created.json()["id"]
        urls = [p.ws_url for p in processes]
        async with Client(urls, alice.token, backoff=FAST) as a, \
                Client(urls[1:], bob.token, backoff=FAST) as b:
            mirror = Mirror(room)
            async with following(a, mirror):
                await a.join(room)
                await b.join(room)
                others = asyncio.ensure_future(chatter(b, room, 30, "bob"))
                mine = asyncio.ensure_future(chatter(a, room, 30, "alice"))
                await until(lambda: len(mirror.messages) >= 10, "some messages arrived")
                await processes[0].kill()
                sent_a, sent_b = await asyncio.wait_for(asyncio.gather(mine, others), 90)
                await converges(mirror, a)
            state = await stored(a, room)
            assert_sent_once(sent_a, state, 30)
            assert_sent_once(sent_b, state, 30)
            assert len(state) == 60
            assert a.connections >= 2


async def test_redis_restarts_under_the_cluster(tmp_path: Path) -> None:
    """Redis killed and started empty while two instances carry a conversation: events
    published meanwhile are lost on the bus; the client ends with the stored state."""
    redis = RedisProcess(tmp_path)
    await redis.start()
    try:
        async with postgres_database() as database, \
                run_cluster(database.url, 2, redis_url=redis.url, rate_limits=False) as cluster:
            alice, bob = cluster.user("alice"), cluster.user("bob")
            room = (await cluster[1].create_conversation(alice, "group", "redis",
                                                         members=[bob]))["id"]
            async with Client(cluster[0].ws_url, alice.token, backoff=FAST) as a, \
                    Client(cluster[1].ws_url, bob.token, backoff=FAST) as b:
                mirror = Mirror(room)
                async with following(a, mirror):
                    await a.join(room)
                    await b.join(room)
                    others = asyncio.ensure_future(chatter(b, room, 40, "bob"))
                    await until(lambda: len(mirror.messages) >= 5, "some messages arrived")
                    await redis.kill()
                    await until(lambda: others.done() or not cluster[0].internals.bus.healthy,
                                "the instance noticed Redis is gone")
                    await redis.start()
                    sent = await asyncio.wait_for(others, 90)
                    await converges(mirror, a)
                state = await stored(a, room)
                assert_sent_once(sent, state, 40)
                assert len(state) == 40
            await cluster.close_clients()
    finally:
        await redis.stop()
