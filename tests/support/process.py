"""hubbub as a separate process (`python -m hubbub serve`), for tests that kill it.

The in-process `RunningServer` cannot be SIGKILLed without taking the tests with it; this
one can. Configuration goes through `HUBBUB_*` variables, as an operator would set them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import secrets
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from hubbub.domain.tokens import mint
from tests.support.client import ChatClient
from tests.support.server import OnLocalPort, User

if TYPE_CHECKING:
    from tests.conftest import Backend

# A cold interpreter imports hubbub, migrates and binds in well under a second; the margin
# is for a loaded two-core machine.
START_TIMEOUT_S = 60.0


def free_port() -> int:
    """A port nobody listens on right now (the server cannot report one it picked itself)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def database_url(backend: Backend, workdir: Path, name: str = "hubbub.db") -> str:
    """The database of a process on the test's backend: a SQLite file `name` of its own
    in `workdir`, or the test's PostgreSQL database."""
    return f"sqlite:///{workdir / name}" if backend.name == "sqlite" else backend.database_url


def for_backend(backend: Backend, workdir: Path, env: dict[str, str]) -> ServerProcess:
    """A process on the test's backend: a SQLite file of its own, or the test's PostgreSQL
    database with Redis under a key prefix of its own."""
    url = database_url(backend, workdir)
    if backend.redis_url is not None:
        env = {**env, "HUBBUB_REDIS_URL": backend.redis_url,
               "HUBBUB_REDIS_PREFIX": f"{backend.redis_prefix}-{uuid.uuid4().hex[:8]}"}
    return ServerProcess(database_url=url, workdir=workdir, extra_env=env)


@contextlib.asynccontextmanager
async def serving(process: ServerProcess) -> AsyncIterator[ServerProcess]:
    """The process started; on the way out its clients closed and the process stopped."""
    await process.start()
    try:
        yield process
    finally:
        await process.close_clients()
        await process.stop()


@dataclass
class ServerProcess(OnLocalPort):
    """One `hubbub serve` child process and what a test needs to talk to it."""

    database_url: str
    workdir: Path
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    extra_env: dict[str, str] = field(default_factory=dict)
    # Flags after `hubbub serve` (`--dev`, as `make run` passes).
    args: tuple[str, ...] = ()
    # The process's limit of open files (RLIMIT_NOFILE), when a test needs a small one.
    fd_limit: int | None = None
    port: int = 0
    process: asyncio.subprocess.Process | None = None
    _clients: list[ChatClient] = field(default_factory=list)
    _starts: int = 0

    @property
    def log_path(self) -> Path:
        return self.workdir / f"server-{self._starts}.log"

    def user(self, name: str | None = None) -> User:
        """A new user and a token for it, signed with this server's secret."""
        user_id = str(uuid.uuid4())
        name = name or f"user-{user_id[:6]}"
        token = mint(self.jwt_secret, user_id, name, now=time.time(), ttl_s=3600)
        return User(user_id, name, token)

    def http(self, user: User | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {user.token}"} if user else {}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=15)

    async def samples(self, name: str) -> list[Sample]:
        """The samples of metric `name` that `/metrics` shows now."""
        async with self.http() as http:
            text = (await http.get("/metrics")).text
        return [sample for family in text_string_to_metric_families(text)
                for sample in family.samples if sample.name == name]

    async def connect(self, user: User) -> ChatClient:
        client = await ChatClient.connect(self.ws_url, user.token)
        self._clients.append(client)
        return client

    async def start(self, port: int | None = None) -> None:
        """Start the process on `port` (a fresh one by default; the last one to restart
        behind a proxy) and wait until `/healthz` answers."""
        assert self.process is None, "already running"
        self._starts += 1
        self.port = port or free_port()
        env = {
            **os.environ,
            "HUBBUB_HOST": "127.0.0.1",
            "HUBBUB_PORT": str(self.port),
            "HUBBUB_DATABASE_URL": self.database_url,
            "HUBBUB_JWT_SECRET": self.jwt_secret,
            "HUBBUB_RATE_LIMITS": "off",
            "HUBBUB_LOG_LEVEL": "warning",
            "HUBBUB_LOG_FORMAT": "text",
            **self.extra_env,
        }
        with self.log_path.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "hubbub", "serve", *self.args, cwd=self.workdir, env=env,
                stdout=log, stderr=asyncio.subprocess.STDOUT,
            )
        if self.fd_limit is not None:  # before it has opened more than a few dozen
            resource.prlimit(self.process.pid, resource.RLIMIT_NOFILE,
                             (self.fd_limit, self.fd_limit))
        try:
            await self._wait_healthy()
        except BaseException:
            await self.kill()  # a server that never became healthy must not outlive the test
            raise

    async def _wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as http:
            while True:
                if self.process.returncode is not None:
                    raise AssertionError(f"hubbub exited with {self.process.returncode}:\n"
                                         f"{self.log_tail()}")
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"hubbub not healthy after {START_TIMEOUT_S} s:\n"
                                         f"{self.log_tail()}")
                await asyncio.sleep(0.1)

    async def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, nothing is flushed on the way out."""
        await self._end(signal.SIGKILL)

    async def stop(self) -> None:
        """SIGTERM, the graceful way (what an orchestrator does first)."""
        await self._end(signal.SIGTERM)

    async def close_clients(self) -> None:
        for client in self._clients:
            await client.close()
        self._clients.clear()

    async def _end(self, signum: signal.Signals) -> None:
        process = self.process
        if process is None:
            return
        if process.returncode is None:
            process.send_signal(signum)
        try:
            await asyncio.wait_for(process.wait(), START_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await process.wait()
        self.process = None

    def holds_connection_from(self, peer_port: int) -> bool:
        """Whether the process still has a descriptor for its end of the TCP connection
        from 127.0.0.1:`peer_port` (Linux: /proc). A socket it closed is gone from its
        descriptors at once, even while the kernel still winds the connection down."""
        assert self.process is not None
        inodes = set()
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            local, remote, inode = (line.split()[i] for i in (1, 2, 9))
            if (int(local.rsplit(":", 1)[1], 16) == self.port
                    and int(remote.rsplit(":", 1)[1], 16) == peer_port):
                inodes.add(f"socket:[{inode}]")
        for fd in Path(f"/proc/{self.process.pid}/fd").iterdir():
            with contextlib.suppress(OSError):  # closed while we looked
                if os.readlink(fd) in inodes:
                    return True
        return False

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
