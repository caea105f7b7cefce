"""One Redis, a Sentinel-watched master, or a Redis Cluster, behind the same two things
the adapters need (docs/DEPLOYMENT.md, "Highly available Redis"):

- `open_client`: the command client. For Sentinel, redis-py's master client: each new
  connection asks the sentinels where the master is, so after a failover the next
  connection reaches the new one (Sentinel closes the clients of a demoted master). For
  Cluster, redis-py's `RedisCluster`, which routes each command by its key's slot.
- `subscriber_shards`: where the bus's subscriber connections go. One shard (SUBSCRIBE)
  for one server and Sentinel; one per primary (SSUBSCRIBE, sharded pub/sub) for Cluster,
  a channel on the primary that owns its slot.

redis-py's asyncio `ClusterPubSub` polls its node connections in turn with timeouts; the
bus keeps its own connections (one read per connection, bus.py), so it only borrows the
slot map from `RedisCluster`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.exceptions import RedisError

from hubbub.redis_url import RedisTarget, Topology, parse_redis_url

RedisClient = Redis | RedisCluster
REDIS_ERRORS = (RedisError, OSError)
ConnectionFactory = Callable[[], AbstractConnection]
# Sentinels answer "where is the master" in well under a millisecond.
SENTINEL_TIMEOUT_S = 1.0
# How often the bus asks the sentinels whether the master moved (SentinelShards).
MASTER_CHECK_S = 0.5


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's master discovery with the blocking pool's waiting for a free connection
    (a burst beyond the pool waits instead of failing, as with one server)."""


def open_client(url: str, *, max_connections: int | None = None,
                wait_s: float | None = None, **options: Any) -> RedisClient:
    """The command client for `url`. `max_connections` and `wait_s` bound the pool (a
    caller beyond it waits that long); `options` go to every connection."""
    target = parse_redis_url(url)
    pool: dict[str, Any] = {}
    if max_connections is not None:
        pool = {"max_connections": max_connections, "timeout": wait_s}
    if target.topology is Topology.SINGLE:
        return Redis.from_pool(BlockingConnectionPool.from_url(url, **pool, **options))
    if target.topology is Topology.SENTINEL:
        master: Redis = _sentinel(target).master_for(
            target.master, connection_pool_class=_BlockingSentinelPool, **_auth(target),
            db=target.db, **pool, **options)
        return master
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in target.hosts],
        max_connections=max_connections or 100, **_auth(target), **options)


def _sentinel(target: RedisTarget) -> Sentinel:
    return Sentinel(list(target.hosts), sentinel_kwargs={  # type: ignore[no-untyped-call]
        "socket_timeout": SENTINEL_TIMEOUT_S, "socket_connect_timeout": SENTINEL_TIMEOUT_S})


def _auth(target: RedisTarget) -> dict[str, Any]:
    return {"username": target.username, "password": target.password}


class Shards:
    """Where subscriber connections go: `plan` names the shards and how to connect to
    each (re-reading a cluster's slot map); `shard_of` says which shard serves a channel.
    `sharded`: SSUBSCRIBE and `smessage` instead of SUBSCRIBE and `message`."""

    sharded = False

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    async def plan(self) -> dict[str, ConnectionFactory]:
        return {"": self._pool.make_connection}

    def shard_of(self, channel: bytes) -> str:
        return ""

    async def watch(self, connection: AbstractConnection) -> None:
        """Return (or raise) when `connection` should be given up although it works: a
        Sentinel failover that left it on the demoted master. Never, here."""
        await asyncio.Event().wait()

    async def close(self) -> None:
        await self._pool.aclose()


class SentinelShards(Shards):
    """One shard on the master the sentinels name.

    A demoted master still serves pub/sub (a replica accepts PUBLISH and SUBSCRIBE), and
    Sentinel does not close pub/sub clients: a bus left there would hear only the instances
    left with it. So the sentinels are asked every MASTER_CHECK_S where the master is;
    when it moved, the subscriber connection is given up, and the command client's idle
    connections are closed so that the publisher reconnects to the new master too.
    """

    def __init__(self, pool: ConnectionPool, client: Redis) -> None:
        super().__init__(pool)
        self._client = client

    async def watch(self, connection: AbstractConnection) -> None:
        pool = self._client.connection_pool
        assert isinstance(pool, SentinelConnectionPool)
        while True:
            await asyncio.sleep(MASTER_CHECK_S)
            try:
                # Closes the client's idle connections when the address changed.
                address = tuple(await pool.get_master_address())  # type: ignore[no-untyped-call]
            except REDIS_ERRORS:
                continue  # sentinels unreachable: the master may well be fine
            where = (getattr(connection, "host", None), getattr(connection, "port", None))
            if address != where:
                raise ConnectionError("the sentinels name another master")


class ClusterShards(Shards):
    """One shard per cluster primary."""

    sharded = True

    def __init__(self, client: RedisCluster) -> None:
        self._client = client
        self._ready = False

    async def plan(self) -> dict[str, ConnectionFactory]:
        if self._ready:  # a shard failed: the slots may have moved
            await self._client.nodes_manager.initialize()
        else:
            await self._client.initialize()
            self._ready = True
        return {node.name: _node_connection(node) for node in self._client.get_primaries()}

    def shard_of(self, channel: bytes) -> str:
        node = self._client.get_node_from_key(channel)  # type: ignore[arg-type]
        return node.name if node is not None else ""

    async def close(self) -> None:
        return None  # the client, its owner's, closes the nodes


def _node_connection(node: ClusterNode) -> ConnectionFactory:
    return lambda: node.connection_class(**node.connection_kwargs)


def subscriber_shards(url: str, client: RedisClient, **options: Any) -> Shards:
    """The subscriber side of `url`, for the bus; `client` is its `open_client(url)`."""
    if isinstance(client, RedisCluster):
        return ClusterShards(client)
    target = parse_redis_url(url)
    if target.topology is Topology.SENTINEL:
        return SentinelShards(SentinelConnectionPool(  # type: ignore[no-untyped-call]
            target.master, _sentinel(target), **_auth(target), db=target.db, **options),
            client)
    return Shards(ConnectionPool.from_url(url, **options))
