"""Traffic and checks across instances, shared by the tests of every Redis topology
(tests/e2e/test_multi_instance.py and test_redis_fault.py on one Redis,
test_redis_cluster.py on a cluster, test_redis_sentinel.py through a failover)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tests.support.client import ChatClient
from tests.support.flows import TIMEOUT, HttpServer
from tests.support.server import User


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


@dataclass
class Sender:
    """Sends one message after another, each with a client_message_id, and keeps the acks."""

    client: ChatClient
    conversation_id: str
    acked: dict[str, dict[str, Any]] = field(default_factory=dict)
    _numbers: itertools.count[int] = field(default_factory=itertools.count)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            key = f"{self.client.user_id[:8]}-{next(self._numbers)}"
            reply = await self.client.request("SendMessage", conversation_id=self.conversation_id,
                                              content=f"message {key}",
                                              client_message_id=key, timeout=TIMEOUT)
            assert reply["type"] == "ActionConfirmed", reply
            self.acked[key] = reply["message"]


async def made_room(server: HttpServer, owner: User, members: list[User], *,
                    kind: str = "group", name: str = "room") -> str:
    """A conversation `owner` creates over REST with `members`, each made known to the
    server first (as their first token would); its id."""
    for member in members:
        async with server.http(member) as http:
            assert (await http.get("/api/v1/users/me")).status_code == 200
    async with server.http(owner) as http:
        created = await http.post("/api/v1/conversations", json={
            "kind": kind, "name": name, "member_ids": [m.id for m in members]})
    assert created.status_code == 201, created.text
    room: str = created.json()["id"]
    return room
