"""Graceful shutdown on SIGTERM (PROTOCOL.md §1, close code 1001) of a real `hubbub serve`
process: every client gets 1001, every acknowledged message is stored, nothing refused is,
and the process is gone within `shutdown_grace`."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.conftest import Backend
from tests.support.client import ChatClient
from tests.support.process import ServerProcess, database_url, serving
from tests.support.rawws import RawClient
from tests.support.stores import stored_keys

pytestmark = pytest.mark.asyncio(loop_scope="session")

GRACE_S = 5.0
CLIENTS = 8
IN_FLIGHT = 4
ACKS_BEFORE_SIGTERM = 200
TIMEOUT = 30.0


@pytest_asyncio.fixture(loop_scope="session")
async def process(backend: Backend, tmp_path: Path) -> AsyncIterator[ServerProcess]:
    """A `hubbub serve` child process with a known grace period."""
    url = database_url(backend, tmp_path, "shutdown.db")
    async with serving(ServerProcess(database_url=url, workdir=tmp_path,
                                     extra_env={"HUBBUB_SHUTDOWN_GRACE": str(GRACE_S)})
                       ) as server:
        yield server


async def sigterm(server: ServerProcess) -> tuple[float, int | None]:
    """Send SIGTERM; seconds until the process is gone, and its exit status."""
    process = server.process
    assert process is not None
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    await asyncio.wait_for(process.wait(), GRACE_S + TIMEOUT)
    server.process = None
    return time.monotonic() - started, process.returncode


class Traffic:
    """One client sending steadily with a few requests in flight, until it is closed."""

    def __init__(self, client: ChatClient, room: str, tag: str) -> None:
        self.client, self.room, self.tag = client, room, tag
        self.acked: dict[str, str] = {}  # client_message_id → stored message id
        self.refused: set[str] = set()  # answered with an Error: must not be stored
        self.sent = 0

    async def worker(self, lane: int, total: list[int]) -> None:
        n = 0
        while True:
            key = f"{self.tag}-{lane}-{n}"
            n += 1
            try:
                reply = await self.client.request(
                    "SendMessage", conversation_id=self.room, content=f"steady {key}",
                    client_message_id=key, timeout=TIMEOUT)
            except AssertionError:  # closed while waiting: this one is in doubt
                return
            if reply["type"] == "ActionConfirmed":
                self.acked[key] = reply["message"]["id"]
                total[0] += 1
            else:
                assert reply["code"] == "INTERNAL_ERROR", reply
                self.refused.add(key)


async def test_sigterm_under_traffic_closes_with_1001_and_keeps_every_ack(
        process: ServerProcess) -> None:
    """SIGTERM under steady traffic: 1001 to everyone, every ack stored, exit in the grace."""
    owner = process.user("owner")
    users = [process.user(f"u{n}") for n in range(CLIENTS)]
    for user in users:
        async with process.http(user) as http:
            assert (await http.get("/api/v1/users/me")).status_code == 200
    async with process.http(owner) as http:
        room = (await http.post("/api/v1/conversations", json={
            "kind": "channel", "name": "steady", "member_ids": [u.id for u in users]})).json()["id"]
    traffics = []
    for n, user in enumerate(users):
        client = await process.connect(user)
        assert (await client.request("JoinConversation", conversation_id=room,
                                     timeout=TIMEOUT))["type"] == "ActionConfirmed"
        traffics.append(Traffic(client, room, f"c{n}"))
    total = [0]
    workers = [asyncio.get_running_loop().create_task(t.worker(lane, total))
               for t in traffics for lane in range(IN_FLIGHT)]
    deadline = time.monotonic() + TIMEOUT
    while total[0] < ACKS_BEFORE_SIGTERM:
        assert time.monotonic() < deadline, process.log_tail()
        await asyncio.sleep(0.01)

    elapsed, status = await sigterm(process)
    await asyncio.wait_for(asyncio.gather(*workers), TIMEOUT)

    refused = {k for t in traffics for k in t.refused}
    print(f"\nSIGTERM → exit {elapsed:.2f} s; {sum(len(t.acked) for t in traffics)} acked, "
          f"{len(refused)} refused while draining")
    assert elapsed < GRACE_S, elapsed
    assert status == 0, process.log_tail()
    assert [await t.client.wait_closed(TIMEOUT) for t in traffics] == [1001] * CLIENTS
    stored = await stored_keys(process.database_url, room)
    acked = {k: v for t in traffics for k, v in t.acked.items()}
    assert len(acked) >= ACKS_BEFORE_SIGTERM
    assert {k: stored.get(k) for k in acked} == acked
    assert not refused & stored.keys()


async def test_an_idle_server_exits_at_once(process: ServerProcess) -> None:
    """With connected but quiet clients, SIGTERM closes them with 1001 and exits quickly."""
    clients = [await process.connect(process.user()) for _ in range(3)]
    elapsed, status = await sigterm(process)
    assert status == 0
    assert elapsed < 2.0, elapsed
    assert [await c.wait_closed(TIMEOUT) for c in clients] == [1001] * 3


async def test_a_client_that_ignores_the_close_does_not_delay_the_exit(
        backend: Backend, tmp_path: Path) -> None:
    """A peer that never reads nor answers the close handshake is cut off at the deadline:
    the process still exits within a grace period shorter than the close timeout."""
    url = database_url(backend, tmp_path, "stubborn.db")
    grace = 1.5
    server = ServerProcess(database_url=url, workdir=tmp_path,
                           extra_env={"HUBBUB_SHUTDOWN_GRACE": str(grace)})
    await server.start()
    try:
        stubborn = server.user("stubborn")
        async with await RawClient.connect(server.port, f"/ws?token={stubborn.token}",
                                           receive_buffer=4096):
            polite = await server.connect(server.user("polite"))
            process = server.process
            assert process is not None
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), TIMEOUT)
            elapsed = time.monotonic() - started
            server.process = None
        assert elapsed < grace, elapsed
        assert process.returncode == 0
        assert await polite.wait_closed(TIMEOUT) == 1001
    finally:
        await server.close_clients()
        with contextlib.suppress(Exception):
            await server.stop()

