"""/metrics for the hub's repairs (delivery/repair.py): `hubbub_repair_*`."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from hubbub.delivery.repair import RepairStats


class RepairCollector(Collector):
    """Reads the hub's `RepairStats` when scraped (plain ints on the hub, no locks)."""

    def __init__(self, stats: RepairStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats
        runs = CounterMetricFamily(
            "hubbub_repair_runs", "Repairs of a conversation from the store, by trigger",
            labels=["trigger"])
        for trigger, count in sorted(stats.runs.items()):
            runs.add_metric([trigger], count)
        yield runs
        yield CounterMetricFamily(
            "hubbub_repair_events", "Change events rebuilt from the store by repairs (each "
            "went to every local subscriber)", value=stats.events)
        yield CounterMetricFamily(
            "hubbub_repair_failed", "Repairs that failed (store error); their gaps were given up",
            value=stats.failed)
