"""HUBBUB_REDIS_URL names one server, a Sentinel-watched master or a Redis Cluster
(src/hubbub/redis_url.py); a malformed URL is refused with what is wrong."""

from __future__ import annotations

import re

import pytest

from hubbub.redis_url import Topology, parse_redis_url


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://cache:6380/1",
                                 "unix:///run/redis.sock?db=2"])
def test_one_server_is_left_to_redis_py(url: str) -> None:
    """The single-server forms are passed on as they are."""
    target = parse_redis_url(url)
    assert (target.topology, target.url, target.hosts) == (Topology.SINGLE, url, ())


def test_sentinel_names_its_sentinels_master_database_and_credentials() -> None:
    """Every sentinel, the master's name, the database and the master's credentials."""
    target = parse_redis_url("redis+sentinel://chat:p%40ss@s1:26379,[::1]:26380/main?db=3")
    assert target.topology is Topology.SENTINEL
    assert target.hosts == (("s1", 26379), ("::1", 26380))
    assert (target.master, target.db, target.username, target.password) == (
        "main", 3, "chat", "p@ss")
    assert parse_redis_url("redis+sentinel://s1:26379/main").db == 0


def test_cluster_names_its_seed_nodes() -> None:
    """Any nodes of the cluster; no database (a cluster has only 0)."""
    target = parse_redis_url("redis+cluster://:secret@n1:7000,n2:7001")
    assert target.topology is Topology.CLUSTER
    assert target.hosts == (("n1", 7000), ("n2", 7001))
    assert (target.username, target.password) == (None, "secret")


@pytest.mark.parametrize(("url", "reason"), [
    ("http://cache:6379", "a redis://HOST:PORT/DB"),
    ("redis+sentinel://s1:26379", "the master's name as the path"),
    ("redis+sentinel://s1:26379/a/b", "the master's name as the path"),
    ("redis+sentinel://s1:26379/main?db=x", "a number for db, not 'x'"),
    ("redis+sentinel://s1:26379/main?timeout=1",
     "only ?db=N after redis+sentinel://…/MASTER, not timeout"),
    ("redis+sentinel://s1/main",
     "HOST:PORT items separated by commas after redis+sentinel://, not 's1'"),
    ("redis+cluster://n1:7000,n2:port", "not 'n2:port'"),
    ("redis+cluster://n1:70000", "not 'n1:70000'"),
    ("redis+cluster://n1:7000/2", "no database or options after redis+cluster://"),
])
def test_a_malformed_url_says_what_is_wrong(url: str, reason: str) -> None:
    """The message names the part at fault."""
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_redis_url(url)
