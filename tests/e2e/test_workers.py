"""`hubbub serve --workers N` (src/hubbub/workers.py): worker processes sharing one port
with SO_REUSEPORT, on one PostgreSQL database and a Redis prefix; real processes, real
sockets, real signals.

Which worker serves a connection is read from the kernel: the worker whose process holds
the server end of the client's TCP connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
import pytest_asyncio

from tests.e2e.test_operate import operator_env, serve
from tests.support.client import ChatClient
from tests.support.cluster import postgres_database
from tests.support.process import START_TIMEOUT_S, ServerProcess, free_port
from tests.support.server import User
from tests.support.services import REDIS_URL, check_redis
from tests.support.waiting import until

pytestmark = pytest.mark.asyncio(loop_scope="session")

WORKERS = 2
# Clients connected to see both workers take some: with the kernel's hash spreading them
# evenly, all 16 land on one of two workers once in 2**15 runs.
SPREAD_CLIENTS = 16
# Attempts at landing a connection on one given worker of two (each lands there half the
# time: all 60 miss once in 2**60).
LANDING_ATTEMPTS = 60


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def database() -> AsyncIterator[str]:
    """One PostgreSQL database for this module's servers."""
    async with postgres_database() as db:
        yield db.url


@dataclass
class Workers:
    """A supervisor (`instance.process`) and its workers, on one port."""

    instance: ServerProcess
    notifications: socket.socket

    @property
    def supervisor(self) -> psutil.Process:
        assert self.instance.process is not None
        return psutil.Process(self.instance.process.pid)

    def pids(self) -> set[int]:
        return {child.pid for child in self.supervisor.children()}

    def listening(self) -> set[int]:
        """The workers holding a listening socket on the port."""
        return {pid for pid, conns in self._sockets() if any(
            c.status == psutil.CONN_LISTEN and c.laddr.port == self.instance.port
            for c in conns)}

    def owner(self, client: ChatClient) -> int:
        """The worker serving `client`'s connection."""
        address = client.socket.local_address
        assert address is not None
        local_port = address[1]
        for pid, conns in self._sockets():
            if any(c.raddr and c.raddr.port == local_port for c in conns):
                return pid
        raise AssertionError(f"no worker holds the connection from port {local_port}")

    def _sockets(self) -> list[tuple[int, list[psutil._ntuples.pconn]]]:
        """Each worker's TCP sockets (a worker that has just ended has none)."""
        found = []
        for pid in self.pids():
            with contextlib.suppress(psutil.NoSuchProcess):
                found.append((pid, psutil.Process(pid).net_connections("tcp")))
        return found

    async def notification(self) -> bytes:
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.sock_recv(self.notifications, 4096),
                                      START_TIMEOUT_S)

    async def connect_to(self, pid: int, user: User) -> ChatClient:
        """A connection of `user` that the kernel gave worker `pid` (others are closed)."""
        for _ in range(LANDING_ATTEMPTS):
            client = await self.instance.connect(user)
            if self.owner(client) == pid:
                return client
            await client.close()
        raise AssertionError(f"no connection landed on worker {pid}")


def metrics_ports() -> int:
    """A port p with p + 1 free too, for HUBBUB_METRICS_PORT with two workers."""
    while True:
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


@contextlib.asynccontextmanager
async def supervisor(tmp_path: Path, database_url: str, **env: str) -> AsyncIterator[Workers]:
    """`hubbub serve` with two workers, started once systemd would hear READY=1."""
    prefix = await check_redis()
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notifications:
        notifications.bind(str(path))
        notifications.setblocking(False)
        instance = ServerProcess(database_url, tmp_path, extra_env={
            "HUBBUB_WORKERS": str(WORKERS), "HUBBUB_REDIS_URL": REDIS_URL,
            "HUBBUB_REDIS_PREFIX": prefix, "HUBBUB_LOG_LEVEL": "info",
            "NOTIFY_SOCKET": str(path), "TMPDIR": str(tmp_path), **env})
        group = Workers(instance, notifications)
        try:
            await instance.start()
            assert await group.notification() == b"READY=1"
            yield group
        finally:
            await instance.close_clients()
            await instance.stop()


async def conversation(instance: ServerProcess, owner: User, *members: User) -> str:
    for member in members:
        async with instance.http(member) as http:
            assert (await http.get("/api/v1/users/me")).status_code == 200
    async with instance.http(owner) as http:
        response = await http.post("/api/v1/conversations", json={
            "kind": "group", "name": "across", "member_ids": [m.id for m in members]})
    assert response.status_code == 201, response.text
    room: str = response.json()["id"]
    return room


async def join(client: ChatClient, room: str) -> None:
    reply = await client.request("JoinConversation", conversation_id=room)
    assert reply["type"] == "ActionConfirmed", reply


async def talk(sender: ChatClient, receiver: ChatClient, room: str, content: str) -> None:
    """`sender` says `content`; `receiver` hears it (and `sender` its own echo)."""
    reply = await sender.request("SendMessage", conversation_id=room, content=content)
    assert reply["type"] == "ActionConfirmed", reply
    for client in (receiver, sender):
        heard = await client.expect("NewMessage")
        assert heard["message"]["content"] == content


async def test_workers_share_the_port_and_their_conversations(
        tmp_path: Path, database: str) -> None:
    """READY=1 only once both workers listen; connections land on both; a message crosses
    from one worker to the other, both ways; each worker logs as itself and serves its own
    /metrics; SIGTERM drains both (1001) and the supervisor exits 0."""
    metrics_port = metrics_ports()
    async with supervisor(tmp_path, database,
                          HUBBUB_METRICS_PORT=str(metrics_port)) as group:
        pids = group.pids()
        assert len(pids) == WORKERS
        assert group.listening() == pids  # already, when READY=1 arrived
        log = group.instance.log_path.read_text()
        for index in range(WORKERS):
            assert f"server.listening worker={index} " in log, log

        async with httpx.AsyncClient(timeout=10) as http:
            for index in range(WORKERS):
                scraped = await http.get(f"http://127.0.0.1:{metrics_port + index}/metrics")
                assert scraped.status_code == 200
                assert "hubbub_build_info" in scraped.text
            assert (await http.get(f"{group.instance.base_url}/metrics")).status_code == 404

        clients = [await group.instance.connect(group.instance.user())
                   for _ in range(SPREAD_CLIENTS)]
        assert {group.owner(client) for client in clients} == pids

        first, second = sorted(pids)
        alice, bob = group.instance.user("alice"), group.instance.user("bob")
        room = await conversation(group.instance, alice, bob)
        on_first = await group.connect_to(first, alice)
        on_second = await group.connect_to(second, bob)
        await join(on_first, room)
        await join(on_second, room)
        await talk(on_first, on_second, room, "from the first worker")
        await talk(on_second, on_first, room, "from the second worker")

        process = group.instance.process
        assert process is not None
        process.send_signal(signal.SIGTERM)
        assert await group.notification() == b"STOPPING=1"
        for client in [*clients, on_first, on_second]:
            assert await client.wait_closed(START_TIMEOUT_S) == 1001
        assert await asyncio.wait_for(process.wait(), START_TIMEOUT_S) == 0
        assert not any(psutil.pid_exists(pid) for pid in pids)


async def test_a_killed_worker_is_started_again_and_takes_connections(
        tmp_path: Path, database: str) -> None:
    """SIGKILL one worker: its clients are cut off, the supervisor starts another in its
    place (and says so), which takes new connections whose messages cross to the other
    worker; when the supervisor itself is killed, its workers stop on their own."""
    async with supervisor(tmp_path, database) as group:
        victim, survivor = sorted(group.pids())
        alice, bob = group.instance.user("alice"), group.instance.user("bob")
        room = await conversation(group.instance, alice, bob)
        doomed = await group.connect_to(victim, alice)
        staying = await group.connect_to(survivor, bob)
        await join(staying, room)

        os.kill(victim, signal.SIGKILL)
        assert await doomed.wait_closed(START_TIMEOUT_S) != 1000
        await until(lambda: len(group.listening() - {victim, survivor}) == 1,
                    "a new worker listens in the killed one's place", within=START_TIMEOUT_S)
        (replacement,) = group.pids() - {survivor}
        back = await group.connect_to(replacement, alice)
        await join(back, room)
        await talk(back, staying, room, "back on a new worker")
        await talk(staying, back, room, "welcome back")
        assert "workers.exited worker=" in group.instance.log_path.read_text()
        assert f"status=-{int(signal.SIGKILL)}" in group.instance.log_path.read_text()

        workers = [psutil.Process(pid) for pid in (replacement, survivor)]
        group.supervisor.kill()
        _, alive = psutil.wait_procs(workers, timeout=START_TIMEOUT_S)
        assert alive == [], "workers outlived their supervisor"


@pytest.mark.parametrize(("variables", "line"), [
    ({"HUBBUB_DATABASE_URL": "postgresql://postgres@127.0.0.1/hubbub"},
     "hubbub: --workers=2: expected 1 without HUBBUB_REDIS_URL: the in-memory bus and "
     "limits cannot span processes (set HUBBUB_REDIS_URL)\n"),
    ({"HUBBUB_REDIS_URL": REDIS_URL},
     "hubbub: --workers=2: expected 1 on SQLite: processes sharing one file would contend "
     "for its write lock (use a postgresql:// HUBBUB_DATABASE_URL)\n"),
])
async def test_workers_need_redis_and_postgresql(tmp_path: Path, variables: dict[str, str],
                                                 line: str) -> None:
    """The in-memory bus cannot span processes, one SQLite file takes one writer: one
    line, exit status 2, nothing started or created."""
    env = operator_env(HUBBUB_JWT_SECRET=secrets.token_urlsafe(32),
                       HUBBUB_PORT=str(free_port()), **variables)
    status, out, err = await serve(tmp_path, env, "--workers", "2")
    assert (status, out, err) == (2, "", line)
    assert os.listdir(tmp_path) == []


async def test_a_busy_port_stops_every_worker(tmp_path: Path, database: str) -> None:
    """A port taken by another program: the workers cannot listen, and the supervisor
    ends them all with the status a single server gives (1), saying why."""
    prefix = await check_redis()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = operator_env(HUBBUB_JWT_SECRET=secrets.token_urlsafe(32),
                           HUBBUB_LOG_LEVEL="error", HUBBUB_PORT=str(port),
                           HUBBUB_DATABASE_URL=database, HUBBUB_REDIS_URL=REDIS_URL,
                           HUBBUB_REDIS_PREFIX=prefix)
        status, out, err = await serve(tmp_path, env, "--workers", "2")
    assert (status, out) == (1, "")
    assert f"hubbub: cannot listen on 127.0.0.1:{port}: address already in use\n" in err


async def test_an_orphaned_worker_that_cannot_stop_ends_at_its_deadline() -> None:
    """With the supervisor gone nobody would kill a worker whose drain hangs: its stdin's
    end starts a deadline after which it exits by itself, status 1, saying so."""
    program = ("import asyncio\n"
               "from hubbub.logs import configure\n"
               "from hubbub.workers import _orphan_watch\n"
               "configure('info', 'text', worker=0)\n"
               "async def main():\n"
               "    _orphan_watch(0.5)(lambda: None)  # a stop that never finishes\n"
               "    await asyncio.sleep(60)\n"
               "asyncio.run(main())\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", program, stdin=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    assert process.stdin is not None
    process.stdin.close()  # as when the supervisor dies
    _, err = await asyncio.wait_for(process.communicate(), START_TIMEOUT_S)
    assert process.returncode == 1
    assert "workers.orphaned worker=0" in err.decode()
    assert "workers.orphan_killed worker=0" in err.decode()
