"""What `HUBBUB_REDIS_URL` names: one Redis, a Sentinel-watched master, or a Redis Cluster.

    redis://[user:pass@]host:port/db   rediss://…   unix:///path?db=N    one server
    redis+sentinel://[user:pass@]host:port[,host:port…]/master-name[?db=N]
    redis+cluster://[user:pass@]host:port[,host:port…]

For Sentinel the hosts are the sentinels' and the credentials the master's; for Cluster the
hosts are any nodes (the rest are discovered). Parsed here, without a driver, so that
`config.py` refuses a bad URL at start-up with the reason, and the Redis adapters build
their client from the same reading (docs/DEPLOYMENT.md, "Highly available Redis").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

SINGLE_SCHEMES = ("redis://", "rediss://", "unix://")
SENTINEL_SCHEME = "redis+sentinel://"
CLUSTER_SCHEME = "redis+cluster://"
EXPECTED = ("a redis://HOST:PORT/DB, rediss://…, unix://PATH, "
            "redis+sentinel://HOST:PORT[,HOST:PORT]/MASTER or "
            "redis+cluster://HOST:PORT[,HOST:PORT] URL")


class Topology(enum.Enum):
    SINGLE = "single"
    SENTINEL = "sentinel"
    CLUSTER = "cluster"


@dataclass(frozen=True)
class RedisTarget:
    """A parsed `HUBBUB_REDIS_URL`. `url` is the original (for one server, redis-py reads it
    itself); `hosts`, `master`, `db` and the credentials serve Sentinel and Cluster."""

    topology: Topology
    url: str
    hosts: tuple[tuple[str, int], ...] = ()
    master: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None


def parse_redis_url(url: str) -> RedisTarget:
    """Read `url`.

    Raises:
        ValueError: not one of the forms above; the message says what was expected
            (config.py shows it after "expected").
    """
    if url.startswith(SINGLE_SCHEMES):
        return RedisTarget(Topology.SINGLE, url)
    if url.startswith(SENTINEL_SCHEME):
        return _sentinel(url)
    if url.startswith(CLUSTER_SCHEME):
        return _cluster(url)
    raise ValueError(EXPECTED)


def _sentinel(url: str) -> RedisTarget:
    parts = urlsplit(url)
    master = unquote(parts.path.strip("/"))
    if not master or "/" in master:
        raise ValueError("the master's name as the path of "
                         "redis+sentinel://HOST:PORT[,HOST:PORT]/MASTER")
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - {"db"})
    if unknown:
        raise ValueError(f"only ?db=N after redis+sentinel://…/MASTER, not {', '.join(unknown)}")
    db_text = query.get("db", ["0"])[-1]
    if not db_text.isdigit():
        raise ValueError(f"a number for db, not {db_text!r}")
    username, password, hosts = _netloc(parts.netloc, "redis+sentinel://")
    return RedisTarget(Topology.SENTINEL, url, hosts, master, int(db_text), username, password)


def _cluster(url: str) -> RedisTarget:
    parts = urlsplit(url)
    if parts.path.strip("/") not in ("", "0") or parts.query:
        raise ValueError("no database or options after redis+cluster://HOST:PORT[,HOST:PORT] "
                         "(a cluster has database 0 only)")
    username, password, hosts = _netloc(parts.netloc, "redis+cluster://")
    return RedisTarget(Topology.CLUSTER, url, hosts, username=username, password=password)


def _netloc(netloc: str, scheme: str
            ) -> tuple[str | None, str | None, tuple[tuple[str, int], ...]]:
    """The credentials and the host:port list of `user:pass@h1:p1,h2:p2`."""
    credentials, _, hostlist = netloc.rpartition("@")
    username = password = None
    if credentials:
        user, colon, secret = credentials.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    hosts: list[tuple[str, int]] = []
    for item in hostlist.split(","):
        host, colon, port = item.strip().rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"HOST:PORT items separated by commas after {scheme}, "
                             f"not {item.strip()!r}")
        hosts.append((host.strip("[]"), int(port)))
    return username, password, tuple(hosts)
