"""/metrics of the dispatcher: `hubbub_webhook_*`."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hubbub.webhooks.dispatcher import DispatchStats


class WebhookCollector(Collector):
    """This instance's counts, and the outbox totals its dispatcher last read (each second
    at most, in its round: a scrape runs no query)."""

    def __init__(self, stats: DispatchStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats
        outbox = stats.outbox
        yield GaugeMetricFamily("hubbub_webhook_pending", "Events waiting to be delivered "
                                "(every instance's)", value=outbox.pending)
        yield GaugeMetricFamily("hubbub_webhook_dead", "Dead-lettered events kept for a "
                                "replay", value=outbox.dead)
        oldest = (0.0 if outbox.oldest_pending_at is None
                  else max(0.0, time.time() - outbox.oldest_pending_at / 1e6))
        yield GaugeMetricFamily("hubbub_webhook_oldest_pending_seconds", "Age of the oldest "
                                "pending event (0: none)", value=oldest)
        yield CounterMetricFamily("hubbub_webhook_delivered", "Events this instance "
                                  "delivered", value=stats.delivered)
        yield CounterMetricFamily("hubbub_webhook_retried", "Failed attempts of this "
                                  "instance that were scheduled again", value=stats.retried)
        yield CounterMetricFamily("hubbub_webhook_dead_lettered", "Events this instance "
                                  "dead-lettered", value=stats.dead_lettered)
