"""Highly available Redis made of private `redis-server` processes on free ports: a
three-primary Redis Cluster, and a master with a replica watched by three sentinels.

Every process is started by the test and stopped by its pid (tests/support/redis_server.py);
every wait is bounded. Outside CI a missing `redis-server` or `redis-cli` skips loudly; with
CI=true it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tests.support.process import ServerProcess
from tests.support.redis_server import RedisProcess, free_port
from tests.support.services import unavailable
from tests.support.waiting import until


async def command(client: Redis, *args: str) -> Any:
    """One raw Redis command: redis-py leaves `execute_command` untyped."""
    return await client.execute_command(*args)  # type: ignore[no-untyped-call]


MASTER_NAME = "hubbub"
# Bounds for a loaded two-core machine; each wait returns as soon as its condition holds.
FORMED_WITHIN_S = 60.0


async def _answers(port: int, check: Callable[[Redis], Awaitable[bool]]) -> bool:
    """`check` on a client of the server on `port`; False while it does not answer."""
    client = Redis(host="127.0.0.1", port=port, socket_timeout=2, socket_connect_timeout=2)
    try:
        return await check(client)
    except (OSError, RedisError):  # not up, or not formed yet
        return False
    finally:
        await client.aclose()


def _made(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return directory


async def _start(directory: Path, *args: str, config: Path | None = None) -> RedisProcess:
    process = RedisProcess(_made(directory), *args, config=config)
    await process.start()
    return process


@dataclass
class RedisClusterNodes:
    """Three primaries that together serve all 16384 slots."""

    nodes: list[RedisProcess]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:2])

    def client(self, index: int) -> Redis:
        return Redis(host="127.0.0.1", port=self.nodes[index].port)

    async def formed(self) -> None:
        """Wait until every node sees every other and all slots served."""
        async def whole(client: Redis) -> bool:
            info = await command(client, "CLUSTER", "INFO")
            text = info.decode() if isinstance(info, bytes) else str(info)
            return ("cluster_state:ok" in text
                    and f"cluster_known_nodes:{len(self.nodes)}" in text)

        for node in self.nodes:
            await until(partial(_answers, node.port, whole),
                        f"node {node.port} sees the whole cluster", within=FORMED_WITHIN_S)

    async def shard_channels(self, index: int) -> list[bytes]:
        """The sharded channels node `index` has subscribers on."""
        client = self.client(index)
        try:
            return list(await command(client, "PUBSUB", "SHARDCHANNELS"))
        finally:
            await client.aclose()


@contextlib.asynccontextmanager
async def redis_cluster(workdir: Path, primaries: int = 3) -> AsyncIterator[RedisClusterNodes]:
    """A formed cluster (`redis-cli --cluster create`, no replicas), stopped afterwards."""
    cli = shutil.which("redis-cli")
    if cli is None:
        unavailable("redis-cli", FileNotFoundError("redis-cli is not on PATH"))
    nodes: list[RedisProcess] = []
    try:
        for index in range(primaries):
            # The bus port named, not port + 10000 (past 65535 for a high free port).
            nodes.append(await _start(workdir / f"node-{index}", "--cluster-enabled", "yes",
                                      "--cluster-port", str(free_port()),
                                      "--cluster-node-timeout", "5000"))
        created = await asyncio.create_subprocess_exec(
            cli or "redis-cli", "--cluster", "create",
            *(f"127.0.0.1:{n.port}" for n in nodes), "--cluster-replicas", "0",
            "--cluster-yes", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        output, _ = await asyncio.wait_for(created.communicate(), FORMED_WITHIN_S)
        assert created.returncode == 0, output.decode(errors="replace")
        cluster = RedisClusterNodes(nodes)
        await cluster.formed()
        yield cluster
    finally:
        for node in nodes:
            await node.stop()


@dataclass
class SentinelGroup:
    """A master, its replica, and three sentinels that fail over between them."""

    servers: list[RedisProcess]  # master first, then the replica
    sentinels: list[RedisProcess]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{MASTER_NAME}"

    async def master_port(self, sentinel: int = 0) -> int:
        client = Redis(host="127.0.0.1", port=self.sentinels[sentinel].port)
        try:
            _, port = await command(client,
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
            return int(port)
        finally:
            await client.aclose()

    async def failover(self, *, kill: bool = False) -> int:
        """`SENTINEL FAILOVER`, or with `kill` SIGKILL the master (the sentinels notice it
        after `down-after-milliseconds`), and wait until every sentinel names the new
        master and it says it is one; returns its port."""
        old = await self.master_port()
        if kill:
            await next(s for s in self.servers if s.port == old).kill()
        else:
            client = Redis(host="127.0.0.1", port=self.sentinels[0].port)
            try:
                await command(client, "SENTINEL", "FAILOVER", MASTER_NAME)
            finally:
                await client.aclose()
        for index in range(len(self.sentinels)):
            await until(partial(self._names_new, index, old),
                        f"sentinel {index} names a new master", within=FORMED_WITHIN_S)
        new = await self.master_port()
        await until(lambda: _answers(new, _is_master), "the new master says it is one",
                    within=FORMED_WITHIN_S)
        return new

    async def _names_new(self, sentinel: int, old: int) -> bool:
        try:
            return await self.master_port(sentinel) != old
        except (OSError, RedisError):
            return False


async def _is_master(client: Redis) -> bool:
    role = await command(client, "ROLE")
    return bool(role) and role[0] == b"master"


def _sentinel_config(directory: Path, master_port: int) -> Path:
    path = _made(directory) / "sentinel.conf"
    path.write_text(
        f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n"
        f"sentinel down-after-milliseconds {MASTER_NAME} 2000\n"
        f"sentinel failover-timeout {MASTER_NAME} 10000\n"
        f"sentinel parallel-syncs {MASTER_NAME} 1\n", encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def redis_sentinels(workdir: Path) -> AsyncIterator[SentinelGroup]:
    """A replicating master and replica, and three sentinels that know both and each
    other (so that one can lead a failover), stopped afterwards."""
    servers: list[RedisProcess] = []
    sentinels: list[RedisProcess] = []
    try:
        master = await _start(workdir / "master")
        servers.append(master)
        servers.append(await _start(workdir / "replica", "--replicaof", "127.0.0.1",
                                    str(master.port)))

        async def replicating(client: Redis) -> bool:
            info = await client.info("replication")
            return info.get("master_link_status") == "up"

        await until(lambda: _answers(servers[1].port, replicating), "the replica is in sync",
                    within=FORMED_WITHIN_S)
        for index in range(3):
            directory = workdir / f"sentinel-{index}"
            sentinels.append(await _start(directory, "--sentinel",
                                          config=_sentinel_config(directory, master.port)))

        async def aware(client: Redis) -> bool:
            replicas = await command(client, "SENTINEL", "REPLICAS", MASTER_NAME)
            peers = await command(client, "SENTINEL", "SENTINELS", MASTER_NAME)
            return len(replicas) == 1 and len(peers) == 2

        for sentinel in sentinels:
            await until(partial(_answers, sentinel.port, aware),
                        f"sentinel {sentinel.port} knows the replica and its peers",
                        within=FORMED_WITHIN_S)
        yield SentinelGroup(servers, sentinels)
    finally:
        for process in sentinels + servers:
            await process.stop()


@contextlib.asynccontextmanager
async def hubbub_on(redis_url: str, database_url: str, workdir: Path, count: int = 2,
                    **env: str) -> AsyncIterator[list[ServerProcess]]:
    """`count` `hubbub serve` processes on one database, one Redis URL and key prefix, and
    one JWT secret (`env`: more HUBBUB_* variables), stopped afterwards."""
    secret = secrets.token_urlsafe(32)
    prefix = f"hubbub-ha-{secrets.token_hex(4)}"
    instances: list[ServerProcess] = []
    try:
        for index in range(count):
            instance = ServerProcess(database_url=database_url,
                                     workdir=_made(workdir / f"hubbub-{index}"),
                                     jwt_secret=secret, extra_env={
                                         "HUBBUB_REDIS_URL": redis_url,
                                         "HUBBUB_REDIS_PREFIX": prefix, **env})
            await instance.start()
            instances.append(instance)
        yield instances
    finally:
        for instance in instances:
            await instance.close_clients()
            await instance.stop()
