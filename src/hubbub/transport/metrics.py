"""Prometheus metrics of one server instance, in its own registry.

Besides hubbub's own counts: the process (CPU, memory, file descriptors) and the Python
runtime (version, garbage collector), `hubbub_build_info`, and through the `watch_*`
methods the state of the parts built in app.py (collectors.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from hubbub import __version__
from hubbub.delivery.ordering import OrderStats
from hubbub.transport.collectors import (
    BreakerCollector,
    BreakerState,
    BusCollector,
    BusState,
    PoolCollector,
    PoolState,
    UsersOnlineCollector,
)

# Seconds: from a cached GET (~1 ms) to a search that ran into its 5 s statement timeout.
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        Info("hubbub_build", "The running hubbub (python_info has the interpreter)",
             registry=self.registry).info({"version": __version__})
        self.connections_open = Gauge(
            "hubbub_connections_open", "WebSocket connections open now", registry=self.registry
        )
        # Per-type counts sit on the hot path (several per message): plain dicts, turned
        # into metrics only when scraped, instead of a locked prometheus value each.
        self._received: dict[str, int] = {}
        self._sent: dict[str, int] = {}
        self._errors: dict[str, int] = {}
        self.registry.register(_CountsCollector(self))
        self.send_commit = Histogram(
            "hubbub_send_commit_seconds", "SendMessage received → committed",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.closes = Counter(
            "hubbub_connections_closed_total", "Connections closed by the server, by code",
            ["code"], registry=self.registry,
        )
        # Routes are the router's templates (`/api/v1/conversations/{id}`), so the labels
        # stay few whatever the ids; a path no route matches is `unmatched`.
        self.http_requests = Counter(
            "hubbub_http_requests_total", "HTTP responses (WebSocket handshakes included), "
            "by route, method and status", ["route", "method", "status"],
            registry=self.registry,
        )
        self.http_seconds = Histogram(
            "hubbub_http_request_seconds", "HTTP request → response, by route (not `/ws`)",
            ["route"], buckets=HTTP_BUCKETS, registry=self.registry,
        )

    def count_sent(self, kind: str, n: int = 1) -> None:
        """Count `n` frames of one type (called once per event, not per recipient)."""
        self._sent[kind] = self._sent.get(kind, 0) + n

    def count_received(self, kind: str) -> None:
        self._received[kind] = self._received.get(kind, 0) + 1

    def count_error(self, code: str) -> None:
        self._errors[code] = self._errors.get(code, 0) + 1

    def watch_order(self, stats: OrderStats) -> None:
        """Export what the hub's version gates did (delivery/ordering.py): how often bus
        events arrived out of version order, and how often a gap had to be given up."""
        self.registry.register(_OrderCollector(stats))

    def watch_writer(self, writer: WriterStats) -> None:
        """Export the store's group commit (adapters/sql/writer.py): commits, the jobs they
        carried (jobs per commit sets the fan-out cost: one socket write per subscriber per
        commit), and batches aborted and retried job by job (on PostgreSQL, a deadlock)."""
        self.registry.register(_WriterCollector(writer))

    def watch_bus(self, bus: BusState) -> None:
        """Export whether the bus carries events, and the events it lost."""
        self.registry.register(BusCollector(bus))

    def watch_breakers(self, breakers: Sequence[BreakerState]) -> None:
        """Export which shared counts fall back to this process (Redis failed)."""
        self.registry.register(BreakerCollector(breakers))

    def watch_pool(self, pool: PoolState) -> None:
        """Export the database pool: connections kept and connections in use."""
        self.registry.register(PoolCollector(pool))

    def watch_users(self, count: Callable[[], int]) -> None:
        """Export how many distinct users this instance serves (`count()` when scraped)."""
        self.registry.register(UsersOnlineCollector(count))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _CountsCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        for name, doc, label, counts in (
            ("hubbub_messages_received", "Client messages received, by type", "type",
             self._metrics._received),
            ("hubbub_messages_sent", "Server messages sent, by type", "type",
             self._metrics._sent),
            ("hubbub_errors", "Error responses, by code", "code", self._metrics._errors),
        ):
            family = CounterMetricFamily(name, doc, labels=[label])
            for value, count in sorted(counts.items()):
                family.add_metric([value], count)
            yield family


class WriterStats(Protocol):
    batches: int
    jobs: int
    aborted: int


class _WriterCollector(Collector):
    def __init__(self, writer: WriterStats) -> None:
        self._writer = writer

    def collect(self) -> Iterator[Metric]:
        writer = self._writer
        yield CounterMetricFamily("hubbub_writer_commits", "Group-commit transactions run",
                                  value=writer.batches)
        yield CounterMetricFamily("hubbub_writer_jobs", "Writes carried by those transactions",
                                  value=writer.jobs)
        yield CounterMetricFamily(
            "hubbub_writer_aborted", "Transactions aborted, their writes retried one by one",
            value=writer.aborted)


class _OrderCollector(Collector):
    def __init__(self, stats: OrderStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        events = CounterMetricFamily(
            "hubbub_order_events", "Change events by what the version gate did with them",
            labels=["outcome"])
        events.add_metric(["in_order"], self._stats.in_order)
        events.add_metric(["held"], self._stats.held)
        events.add_metric(["late_dropped"], self._stats.late_dropped)
        yield events
        yield CounterMetricFamily(
            "hubbub_order_skipped_versions", "Versions given up after the hold (lost events)",
            value=self._stats.skipped_versions)
        yield GaugeMetricFamily(
            "hubbub_order_longest_hold_seconds", "Longest time an early event waited",
            value=self._stats.max_wait)


# The app's Metrics, for the middlewares that count and time every HTTP request.
METRICS = web.AppKey("metrics", Metrics)
