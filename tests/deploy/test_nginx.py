"""The shipped nginx site (deploy/nginx/hubbub.conf) in front of three `hubbub serve`
processes on one PostgreSQL database and one Redis prefix, clients on `wss://`.

One instance is stopped (SIGTERM, as a rolling restart does) under traffic: its clients
get 1001, reconnect through nginx to the others and sync, every acknowledged message is
stored once and every client ends with the stored state; started again on its port, it
gets requests again. Each client connects from an address of its own on 127.0.0.0/8, so
the handshake limit, which counts the client nginx names in `X-Forwarded-For`, can be seen
telling clients apart and ignoring a forged header.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import secrets
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from hubbub.client import AuthenticationError, HandshakeFailed
from tests.support.across import made_room
from tests.support.client import ChatClient
from tests.support.cluster import postgres_database
from tests.support.flows import TIMEOUT, rest_messages
from tests.support.metrics import sample
from tests.support.nginx import Proxy, run_nginx
from tests.support.process import ServerProcess
from tests.support.replica import CHANGE_EVENTS, Replica, history_state
from tests.support.server import User
from tests.support.services import REDIS_URL, check_redis
from tests.support.tls import self_signed
from tests.support.waiting import until

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(300)]

PEERS = 6
SENDERS = 3
# Long enough for a few dozen sends per phase on a loaded machine.
PHASE_S = 2.0
# Handshakes per client address before 429: each peer needs two or three (its first
# connection, a reconnect), and the refill is slow enough not to matter during the test.
HANDSHAKE_BURST = 5
HANDSHAKE_RATE = 0.01


@dataclass
class Peer:
    """A client as an application writes one: it reconnects when its connection ends,
    rejoins, syncs from the last version it holds, and retries a send that was not
    acknowledged with the same `client_message_id`."""

    user: User
    source: str
    proxy: Proxy
    room: str
    replica: Replica = field(init=False)
    client: ChatClient | None = None
    close_codes: list[int | None] = field(default_factory=list)
    acked: dict[str, dict[str, Any]] = field(default_factory=dict)
    _numbers: itertools.count[int] = field(default_factory=itertools.count)
    _applied: int = 0

    def __post_init__(self) -> None:
        self.replica = Replica(self.room)

    async def connect(self) -> None:
        self.client = await ChatClient.connect(self.proxy.ws_url, self.user.token,
                                               ssl=self.proxy.tls, local_addr=(self.source, 0))
        self._applied = 0
        reply = await self.client.request("JoinConversation", conversation_id=self.room,
                                          timeout=TIMEOUT)
        assert reply["type"] == "ActionConfirmed", reply
        await self.replica.catch_up(self.client)

    @property
    def connected(self) -> bool:
        return self.client is not None and not self.client.closed

    async def settle(self) -> None:
        """Apply the change events received so far, syncing over a gap."""
        assert self.client is not None
        frames = self.client.frames
        while self._applied < len(frames):
            frame = frames[self._applied]
            self._applied += 1
            if frame["type"] in CHANGE_EVENTS and not self.replica.offer(frame):
                if not self.connected:
                    return  # the next connection syncs from here
                await self.replica.catch_up(self.client)

    async def reconnect(self) -> None:
        """After the connection ended: keep what arrived, wait a moment, come back."""
        assert self.client is not None
        self.close_codes.append(await self.client.wait_closed())
        await self.settle()
        await self.client.close()
        # PROTOCOL.md §1: after 1001, reconnect after a random delay (no stampede).
        await asyncio.sleep(random.uniform(0.05, 0.3))
        await self.connect()

    async def send_next(self) -> None:
        key = f"{self.user.name}-{next(self._numbers)}"
        while True:
            if not self.connected:
                await self.reconnect()
            assert self.client is not None
            try:
                reply = await self.client.request(
                    "SendMessage", conversation_id=self.room, content=f"message {key}",
                    client_message_id=key, timeout=TIMEOUT)
            except AssertionError:
                continue  # closed before the answer: reconnect and send it again
            if reply["type"] == "ActionConfirmed":
                self.acked[key] = reply["message"]
                return
            # A frame that reached a draining instance: nothing of it was stored, and
            # the 1001 follows.
            assert reply["type"] == "Error", reply
            assert "shutting down" in reply["message"], reply
            await self.reconnect()

    async def run(self, stop: asyncio.Event, sending: bool) -> None:
        while not stop.is_set():
            if sending:
                await self.send_next()
                continue
            assert self.client is not None
            closed = asyncio.ensure_future(self.client.wait_closed(None))
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({closed, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if closed.done():
                await self.reconnect()
            else:
                closed.cancel()


async def connections_on(instance: ServerProcess) -> float:
    async with instance.http() as http:
        text = (await http.get("/metrics")).text
    return sample(text, "hubbub_connections_open") or 0.0


async def healthz_served_by(instance: ServerProcess) -> float:
    async with instance.http() as http:
        text = (await http.get("/metrics")).text
    return sample(text, "hubbub_http_requests_total", route="/healthz", status="200") or 0.0


async def handshake_status(proxy: Proxy, user: User, source: str,
                           forwarded_for: str | None = None) -> int:
    """Open a WebSocket from `source` through nginx and close it: 101, or the refusal."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    try:
        client = await ChatClient.connect(proxy.ws_url, user.token, ssl=proxy.tls,
                                          local_addr=(source, 0), headers=headers)
    except (AuthenticationError, HandshakeFailed) as exc:
        return exc.status
    await client.close()
    return 101


async def handshakes_until_refused(proxy: Proxy, user: User, source: str) -> tuple[int, int]:
    """Handshakes from `source`, each with a different forged `X-Forwarded-For`, until one
    is refused: (that attempt's number, its status)."""
    for attempt in range(1, HANDSHAKE_BURST * 3):
        status = await handshake_status(proxy, user, source, f"198.51.100.{attempt}")
        if status != 101:
            return attempt, status
    raise AssertionError("a forged X-Forwarded-For bought a fresh handshake bucket each time")


async def test_three_instances_behind_nginx_over_tls(tmp_path: Path) -> None:
    """Clients on wss:// through nginx survive an instance stopped under traffic: they
    reconnect to the others, sync, and hold exactly the stored state."""
    async with postgres_database() as database:
        prefix = await check_redis()
        secret = secrets.token_urlsafe(32)
        env = {
            "HUBBUB_REDIS_URL": REDIS_URL, "HUBBUB_REDIS_PREFIX": prefix,
            "HUBBUB_TRUSTED_PROXIES": "127.0.0.1", "HUBBUB_SHUTDOWN_GRACE": "5",
            "HUBBUB_RATE_LIMITS": "on", "HUBBUB_HANDSHAKE_BURST": str(HANDSHAKE_BURST),
            "HUBBUB_HANDSHAKE_RATE": str(HANDSHAKE_RATE),
            "HUBBUB_SEND_RATE": "1000", "HUBBUB_SEND_BURST": "1000",
            "HUBBUB_OTHER_RATE": "1000", "HUBBUB_OTHER_BURST": "1000",
        }
        instances = []
        for n in range(3):
            workdir = tmp_path / f"instance-{n}"
            workdir.mkdir()
            instances.append(ServerProcess(database.url, workdir, jwt_secret=secret,
                                           extra_env=env))
        peers: list[Peer] = []
        try:
            for instance in instances:
                await instance.start()
            async with run_nginx(tmp_path / "nginx", [i.port for i in instances],
                                 self_signed(tmp_path / "tls")) as proxy:
                await _serve_through_the_proxy(proxy, instances, peers)
        finally:
            for peer in peers:
                if peer.client is not None:
                    await peer.client.close()
            for instance in instances:
                await instance.stop()


async def _serve_through_the_proxy(proxy: Proxy, instances: list[ServerProcess],
                                   peers: list[Peer]) -> None:
    async with proxy.http() as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        assert (await http.get("/metrics")).status_code == 404, "metrics are not public"
    async with httpx.AsyncClient(timeout=15) as plain:
        redirect = await plain.get(f"http://127.0.0.1:{proxy.http_port}/healthz")
    assert redirect.status_code == 301
    assert redirect.headers["location"] == "https://127.0.0.1/healthz"

    users = [instances[0].user(f"peer{n}") for n in range(PEERS)]
    async with proxy.http(users[0]) as http:  # known to the server, as the others below
        assert (await http.get("/api/v1/users/me")).status_code == 200
    room = await made_room(proxy, users[0], users[1:], kind="channel", name="behind nginx")

    # One worker's round robin, nothing else in between: two connections per instance.
    for n, user in enumerate(users):
        peer = Peer(user, f"127.0.0.{20 + n}", proxy, room)
        await peer.connect()
        peers.append(peer)
    spread = [await connections_on(instance) for instance in instances]
    assert all(count >= 1 for count in spread), f"connections per instance: {spread}"

    stop = asyncio.Event()
    tasks = [asyncio.create_task(peer.run(stop, sending=n < SENDERS))
             for n, peer in enumerate(peers)]
    try:
        await asyncio.sleep(PHASE_S)
        stopped = instances[1]
        await stopped.stop()  # SIGTERM: drain, 1001, exit
        await asyncio.sleep(PHASE_S)
        await stopped.start(port=stopped.port)
        await until(lambda: _served_again(proxy, stopped), "nginx sends requests to the "
                    "restarted instance again", within=30, every=0.2)
        await asyncio.sleep(PHASE_S)
    finally:
        stop.set()
        await asyncio.gather(*tasks)

    closes = [code for peer in peers for code in peer.close_codes]
    assert closes, "no client was on the stopped instance"
    assert set(closes) == {1001}, f"close codes seen through nginx: {closes}"

    stored = await rest_messages(proxy, users[0], room)
    keys = Counter((m["sender_id"], m["client_message_id"]) for m in stored)
    assert not [key for key, n in keys.items() if n > 1], "a message was stored twice"
    acked = {m["id"] for peer in peers for m in peer.acked.values()}
    assert acked <= {m["id"] for m in stored}, "an acknowledged message is missing"
    assert len(stored) == len(acked) > 0
    truth = history_state(stored)
    for peer in peers:
        await peer.settle()
        assert peer.client is not None
        await peer.replica.catch_up(peer.client)
        assert peer.replica.state() == truth, f"{peer.user.name} diverged"

    # X-Forwarded-For: nginx appends the address it saw, hubbub counts that one.
    assert await handshakes_until_refused(proxy, users[0], "127.0.0.99") == (
        HANDSHAKE_BURST + 1, 429)
    assert await handshake_status(proxy, users[1], "127.0.0.98") == 101, \
        "another client address has a bucket of its own"
    print(f"{len(acked)} messages acknowledged through nginx; closes {closes}; "
          f"connections per instance before the stop: {spread}")


async def _served_again(proxy: Proxy, instance: ServerProcess) -> bool:
    async with proxy.http() as http:
        await http.get("/healthz")
    return await healthz_served_by(instance) > 0
