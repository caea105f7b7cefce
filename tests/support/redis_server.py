"""A private `redis-server` on a free port, which a test may kill and start again.

Outside CI a missing `redis-server` binary skips the test loudly; with CI=true it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

from hubbub.adapters.redis.client import connect
from hubbub.adapters.redis.topology import RedisClient
from tests.support.services import unavailable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class RedisProcess:
    """One redis-server without persistence: a restart comes back empty, like a crash."""

    def __init__(self, workdir: Path, *args: str, config: Path | None = None) -> None:
        """`args`: more `redis-server` arguments (a cluster node's, a replica's, a
        sentinel's: tests/support/redis_servers.py); `config`: a configuration file,
        which a sentinel needs (it rewrites it)."""
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server", FileNotFoundError("redis-server is not on PATH"))
        self._binary = binary or "redis-server"
        self._workdir = workdir
        self._args = args
        self._config = () if config is None else (str(config),)
        self.port = free_port()
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        """Start on the same port as before and wait until it accepts connections."""
        self._process = await asyncio.create_subprocess_exec(
            self._binary, *self._config, "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self._workdir), *self._args,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while loop.time() < deadline:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return
        raise AssertionError(f"redis-server did not start on port {self.port}")

    async def kill(self) -> None:
        """SIGKILL: connections drop without a goodbye, as in a crash."""
        if self._process is not None:
            self._process.kill()
            await self._process.wait()
            self._process = None

    async def stop(self) -> None:
        await self.kill()


@contextlib.asynccontextmanager
async def private_redis(workdir: Path) -> AsyncIterator[tuple[RedisProcess, RedisClient]]:
    """A started private redis-server and a client of it (fail-fast, as the server's own);
    the client is closed and the server stopped afterwards."""
    redis = RedisProcess(workdir)
    await redis.start()
    client = connect(redis.url)
    try:
        yield redis, client
    finally:
        await client.aclose()
        await redis.stop()
