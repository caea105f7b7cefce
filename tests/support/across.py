"""Checks that instances count together, shared by the tests of every Redis topology
(tests/e2e/test_multi_instance.py on one Redis, test_redis_cluster.py on a cluster)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from tests.support.client import ChatClient
from tests.support.flows import TIMEOUT


async def assert_presence_counted(watching: ChatClient, user_id: str,
                                  connect: Callable[[int], Awaitable[ChatClient]]) -> None:
    """The user, connected through instance 1 then instance 2 (`connect(index)`), is
    announced online once, and offline only when the last of the two connections closes."""
    first = await connect(1)
    online = await watching.expect("PresenceChanged", timeout=TIMEOUT, user_id=user_id)
    assert online["status"] == "online"
    second = await connect(2)
    await first.close()
    await watching.expect_none("PresenceChanged", within=0.5, user_id=user_id)
    await second.close()
    offline = await watching.expect("PresenceChanged", timeout=TIMEOUT, user_id=user_id)
    assert offline["status"] == "offline"


async def assert_pings_limited(clients: list[ChatClient], rate: int) -> None:
    """One user's connections, one per instance, each sending `rate` pings at once: `rate`
    get through in total (plus what refills meanwhile), not one bucket's worth each."""
    started = time.perf_counter()
    request_ids = [(client, await client.send("Ping")) for _ in range(rate)
                   for client in clients]
    replies = [await client.response(rid, TIMEOUT) for client, rid in request_ids]
    elapsed = time.perf_counter() - started
    allowed = sum(reply["type"] == "Pong" for reply in replies)
    limited = [r for r in replies if r["type"] == "Error"]
    assert all(r["code"] == "RATE_LIMITED" for r in limited), limited
    assert rate <= allowed <= rate + int(rate * elapsed) + 1, (allowed, elapsed)
