"""What `/metrics` and `/readyz` tell an operator, where metrics are served and who may
read them; and that the shipped Grafana dashboard and alert rules ask only for metrics
hubbub exports.

The metrics tests scrape a real server after real traffic, on both backends.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import yaml

from hubbub import __version__
from hubbub.client import AuthenticationError
from hubbub.config import Settings
from tests.conftest import Backend, StartServer
from tests.support.client import ChatClient
from tests.support.flows import TIMEOUT, joined, send
from tests.support.metrics import exported_names, sample, samples
from tests.support.process import free_port
from tests.support.server import RunningServer, run_server
from tests.support.services import (
    REDIS_URL,
    check_redis,
    create_postgres_database,
    drop_postgres_database,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "hubbub.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
# A metric name in PromQL: hubbub's own and the process and runtime collectors'.
METRIC = re.compile(r"\b(?:hubbub|process|python)_[a-z0-9_]+\b")
# The Redis coordination adapters that fall back to their process when Redis fails.
PARTS = {"connection_counts", "rate_limits", "tickets", "typing"}


async def traffic(server: RunningServer) -> None:
    """Two users, three connections, a message, a bad frame, a refused handshake, a
    conversation made over REST and a path no route has."""
    alice, bob = server.user("alice"), server.user("bob")
    room = (await server.create_conversation(alice, members=[bob]))["id"]
    first = await joined(server, alice, room)
    await joined(server, alice, room)
    other = await joined(server, bob, room)
    await send(first, room, "counted")
    await other.expect("NewMessage", timeout=TIMEOUT)
    await first.send_raw("not json")
    await first.expect("Error", timeout=TIMEOUT)
    with pytest.raises(AuthenticationError):
        await ChatClient.connect(server.ws_url, "not-a-token")
    async with server.http() as http:
        assert (await http.get("/nowhere")).status_code == 404


async def scrape(base_url: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10) as http:
        return await http.get("/metrics")


async def test_metrics_describe_the_instance(start_server: StartServer,
                                             backend: Backend) -> None:
    """Users online (not connections), the build, the process, the bus, the breakers, the
    database pool and the HTTP responses, WebSocket handshakes included, all read as the
    traffic left them."""
    async with start_server() as server:
        await traffic(server)
        response = await scrape(server.base_url)
    assert response.status_code == 200
    text = response.text
    assert sample(text, "hubbub_connections_open") == 3
    assert sample(text, "hubbub_users_online") == 2
    assert sample(text, "hubbub_build_info", version=__version__) == 1
    assert (sample(text, "process_resident_memory_bytes") or 0) > 0
    assert sample(text, "python_info") == 1
    assert sample(text, "hubbub_bus_healthy") == 1
    assert sample(text, "hubbub_bus_dropped_total") == 0
    size = sample(text, "hubbub_db_pool_size")
    assert size is not None
    assert size > 0
    # The writer keeps its connection between batches.
    assert (sample(text, "hubbub_db_pool_checked_out") or 0) >= 1
    breakers = {found.labels["part"]: found.value
                for found in samples(text, "hubbub_coordination_breaker_open")}
    assert breakers == ({part: 0 for part in PARTS} if backend.redis_url else {})

    def responses(route: str, method: str, status: str) -> float | None:
        return sample(text, "hubbub_http_requests_total", route=route, method=method,
                      status=status)

    assert responses("/api/v1/conversations", "POST", "201") == 1
    assert responses("/ws", "GET", "101") == 3
    assert responses("/ws", "GET", "401") == 1
    assert responses("unmatched", "GET", "404") == 1
    timed = sample(text, "hubbub_http_request_seconds_count", route="/api/v1/conversations")
    assert timed is not None
    assert timed >= 1
    assert sample(text, "hubbub_http_request_seconds_count", route="/ws") is None, \
        "a WebSocket's life is not a request's latency"


async def test_metrics_can_listen_on_a_port_of_their_own(start_server: StartServer) -> None:
    """With `metrics_port`, `/metrics` is served there and no longer on the main port."""
    port = free_port()
    async with start_server(metrics_port=port) as server:
        assert (await scrape(server.base_url)).status_code == 404
        apart = await scrape(f"http://127.0.0.1:{port}")
        assert apart.status_code == 200
        assert sample(apart.text, "hubbub_connections_open") == 0
    with pytest.raises(httpx.ConnectError):
        await scrape(f"http://127.0.0.1:{port}")


async def test_metrics_can_ask_for_a_token(start_server: StartServer) -> None:
    """With `metrics_token`, `/metrics` answers 401 without it or with another token."""
    async with start_server(metrics_token="scrape-me") as server:
        missing = await scrape(server.base_url)
        wrong = await scrape(server.base_url, "scrape-you")
        right = await scrape(server.base_url, "scrape-me")
        async with server.http() as http:
            health = await http.get("/healthz")
    for refused in (missing, wrong):
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "UNAUTHORIZED"
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "hubbub_" not in refused.text
    assert right.status_code == 200
    assert "hubbub_connections_open" in right.text
    assert health.status_code == 200, "the health checks stay open"


def dashboard_queries() -> list[str]:
    """Every PromQL expression of the dashboard: its panels' and its variables'."""
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert panels, "a dashboard without panels"
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    queries = []
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        queries += [target["expr"] for target in panel["targets"]]
    queries += [v["query"]["query"] for v in dashboard["templating"]["list"]
                if v["type"] == "query"]
    return queries


def alert_queries() -> list[str]:
    rules = [rule for group in yaml.safe_load(ALERTS.read_text())["groups"]
             for rule in group["rules"]]
    assert rules, "no alert rules"
    return [rule["expr"] for rule in rules]


async def test_the_dashboard_and_alerts_ask_only_for_exported_metrics(
        start_server: StartServer) -> None:
    """Every metric named by a dashboard panel or an alert rule is in the exposition of a
    server that has seen traffic (a renamed metric would leave a panel empty and an alert
    silent forever); `up` is the one series Prometheus makes itself."""
    async with start_server() as server:
        await traffic(server)
        exported = exported_names((await scrape(server.base_url)).text)
    for source, queries in (("dashboard", dashboard_queries()), ("alerts", alert_queries())):
        named = {name for query in queries for name in METRIC.findall(query)}
        assert named, f"the {source} names no metric"
        missing = sorted(named - exported)
        assert not missing, f"the {source} asks for metrics hubbub does not export: {missing}"
    for query in alert_queries():
        assert METRIC.search(query) or query.startswith("up{"), query


async def test_readiness_fails_when_the_database_goes_away() -> None:
    """`/readyz` is 503 naming the database once it is gone (here: dropped), while
    `/healthz` still answers: the process is alive, it cannot serve."""
    database = await create_postgres_database()
    try:
        settings = Settings(database_url=database.url, redis_url=REDIS_URL,
                            redis_prefix=await check_redis(), log_format="text")
        async with run_server(settings) as server, server.http() as http:
            assert (await http.get("/readyz")).json() == {"status": "ok"}
            await drop_postgres_database(database)  # WITH (FORCE): its connections end
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json() == {"status": "unavailable", "failed": ["database"]}
            assert (await http.get("/healthz")).status_code == 200
    finally:
        await drop_postgres_database(database)
