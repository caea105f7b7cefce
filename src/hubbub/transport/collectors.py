"""Collectors that read the state of the running parts when `/metrics` is scraped.

Each reads a few attributes at scrape time and keeps nothing, so none costs anything
between scrapes. They see their part through a small protocol, never the adapter itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class BusState(Protocol):
    @property
    def healthy(self) -> bool: ...

    @property
    def dropped(self) -> int: ...


class BreakerState(Protocol):
    """adapters/redis/client.py's Breaker: a part counting in this process while Redis fails."""

    @property
    def name(self) -> str: ...

    @property
    def down(self) -> bool: ...


class PoolState(Protocol):
    """SQLAlchemy's QueuePool, as far as it is read here."""

    def size(self) -> int: ...

    def checkedout(self) -> int: ...


class BusCollector(Collector):
    def __init__(self, bus: BusState) -> None:
        self._bus = bus

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("hubbub_bus_healthy",
                                "1 while the bus carries events between instances",
                                value=1 if self._bus.healthy else 0)
        yield CounterMetricFamily(
            "hubbub_bus_dropped", "Events this instance could not publish (Redis down or "
            "not keeping up); clients repair them with SyncMessages", value=self._bus.dropped)


class BreakerCollector(Collector):
    def __init__(self, breakers: Sequence[BreakerState]) -> None:
        self._breakers = breakers

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "hubbub_coordination_breaker_open",
            "1 while a shared count falls back to this process because Redis failed",
            labels=["part"])
        for breaker in self._breakers:
            family.add_metric([breaker.name], 1 if breaker.down else 0)
        yield family


class PoolCollector(Collector):
    def __init__(self, pool: PoolState) -> None:
        self._pool = pool

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("hubbub_db_pool_size",
                                "Database connections the pool keeps open",
                                value=self._pool.size())
        yield GaugeMetricFamily(
            "hubbub_db_pool_checked_out",
            "Database connections in use now (above the size: overflow connections)",
            value=self._pool.checkedout())


class UsersOnlineCollector(Collector):
    def __init__(self, count: Callable[[], int]) -> None:
        self._count = count

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("hubbub_users_online",
                                "Distinct users with a connection on this instance",
                                value=self._count())
