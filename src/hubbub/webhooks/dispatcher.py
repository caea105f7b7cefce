"""The dispatcher: delivers the outbox at least once, in order per conversation.

Every instance runs one. Each round it claims due events — for as many conversations as it
has free delivery slots, the oldest pending event of each and up to `RUN - 1` after it,
leased to this dispatcher (adapters/sql/outbox.py) — and sends each conversation's run in a
task of its own, one event after another. Delivered events are deleted by the next claim,
in its write (the next ones of their conversation become claimable then: a run's
conversation is claimed again only by a later round anyway), so a round of runs costs one
write instead of one per run; a round that cannot claim (no free slot) deletes them alone,
as does `close`. A failed one ends its run, the
rest given back, and is due again after an exponential backoff with full jitter
(`base · 2^attempts`, capped, times a random fraction), until its retry window has
passed: then it is dead, kept and listed until replayed.

Runs exist for throughput: a claim scans the pending events, and one claim per event cost
more CPU than the sends it served (docs/DECISIONS.md, "Webhooks"). A crash mid-run sends the
run's delivered events again: at least once.

A round runs when the writer committed events on this instance (`wake`), when a delivery
finished, or every poll interval (events of other instances, retries coming due), at most
one per `MIN_ROUND_S`. While the writer is busy (`busy`: its batches are large), rounds
wait for the poll interval: deliveries lag behind a burst of sends instead of taking the
CPU it needs, and catch up after. After a claim that found nothing due, commits alone do not start
another before the poll interval: with every conversation waiting out a backoff, each
claim would read every pending event and find nothing, many times a second. The
lease outlasts any attempt (twice the timeout, and a margin), so no two dispatchers send
one event at once; an instance that dies with events leased leaves them to the others once
their lease ends — delivered at least once, never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from hubbub.logs import get_logger
from hubbub.storage.errors import StoreUnavailable
from hubbub.storage.outbox import OutboxRow, OutboxStats, OutboxStore

log = get_logger("hubbub.webhooks")

Send = Callable[[OutboxRow], Awaitable[str | None]]
STATS_INTERVAL_S = 1.0
# Events of one conversation claimed and sent together.
RUN = 32
# At most one round per this long: a claim scans the pending events, and commits wake the
# dispatcher thousands of times a second under load.
MIN_ROUND_S = 0.05


@dataclass(frozen=True)
class Policy:
    """How hard to try (the `webhook_*` settings)."""

    timeout: float = 10.0
    retry_base: float = 1.0
    retry_max_delay: float = 900.0
    retry_for: float = 86400.0
    poll_interval: float = 1.0
    concurrency: int = 16

    @property
    def lease_s(self) -> float:
        return 2 * self.timeout + 5.0

    def delay(self, attempts: int, fraction: float) -> float:
        """Seconds before the next attempt after `attempts` failed ones (full jitter)."""
        return min(self.retry_max_delay, self.retry_base * 2.0 ** min(attempts, 60)) * fraction


@dataclass
class DispatchStats:
    """Counts of this instance, and the outbox's last read totals (for /metrics)."""

    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0
    outbox: OutboxStats = field(default_factory=lambda: OutboxStats(0, 0, None))
    read_at: float = 0.0


def micros() -> int:
    return time.time_ns() // 1000


class Dispatcher:
    def __init__(self, outbox: OutboxStore, send: Send, policy: Policy, *,
                 busy: Callable[[], bool] = lambda: False,
                 clock: Callable[[], int] = micros,
                 jitter: Callable[[], float] = random.random) -> None:
        self._outbox = outbox
        self._busy = busy
        self._claimed_at = 0.0
        self._send = send
        self._policy = policy
        self._clock = clock
        self._jitter = jitter
        self._owner = uuid.uuid4().hex
        self._wake = asyncio.Event()
        self._finished_any = False  # a delivery ended since the last claim
        self._idle_since: float | None = None  # the last claim found nothing due
        self._in_flight: set[asyncio.Task[None]] = set()
        self._done: list[int] = []  # delivered, deleted with the next claim
        self._task: asyncio.Task[None] | None = None
        self.stats = DispatchStats()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def wake(self) -> None:
        """Events were committed here: look now rather than at the next poll."""
        self._wake.set()

    async def close(self) -> None:
        """Stop claiming and drop the attempts in flight (their leases run out, and they
        are sent again: at least once)."""
        tasks = [t for t in (self._task, *self._in_flight) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._delete_done()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._round()
            except StoreUnavailable as exc:
                log.warning("webhooks.store_unavailable", error=str(exc))
            except Exception:
                log.exception("webhooks.round_failed")
            await asyncio.sleep(MIN_ROUND_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._policy.poll_interval)

    async def _round(self) -> None:
        if time.monotonic() - self.stats.read_at >= STATS_INTERVAL_S:
            self.stats.outbox = await self._outbox.stats()
            self.stats.read_at = time.monotonic()
        free = self._policy.concurrency - len(self._in_flight)
        if free <= 0:
            await self._delete_done()
            return
        idle, since_claim = self._idle_since, time.monotonic() - self._claimed_at
        if since_claim < self._policy.poll_interval and (
                self._busy() or (idle is not None and not self._finished_any)):
            return
        self._finished_any = False
        self._claimed_at = time.monotonic()
        now = self._clock()
        lease_until = now + int(self._policy.lease_s * 1e6)
        done, self._done = self._done, []
        try:
            rows = await self._outbox.claim(self._owner, now, lease_until, free, RUN, done)
        except BaseException:
            self._done[:0] = done
            raise
        self._idle_since = None if rows else time.monotonic()
        runs: dict[str, list[OutboxRow]] = {}
        for row in rows:
            runs.setdefault(row.conversation_id, []).append(row)
        loop = asyncio.get_running_loop()
        for run in runs.values():
            task = loop.create_task(self._deliver(run, lease_until))
            self._in_flight.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._finished_any = True
        self._wake.set()  # the next event of that conversation may be due now

    async def _deliver(self, run: list[OutboxRow], lease_until: int) -> None:
        """Send a conversation's run in order; stop at the first failure, at an event that
        failed before (it has a backoff of its own), or when the lease could run out
        during the next attempt, and give the rest back."""
        delivered: list[int] = []
        margin = int((self._policy.timeout + 1.0) * 1e6)
        try:
            for i, row in enumerate(run):
                if (i and row.attempts) or self._clock() + margin > lease_until:
                    await self._outbox.release(self._owner, [r.seq for r in run[i:]])
                    break
                error = await self._send(row)
                if error is not None:
                    await self._failed(row, error)
                    if i + 1 < len(run):
                        await self._outbox.release(self._owner,
                                                   [r.seq for r in run[i + 1:]])
                    break
                delivered.append(row.seq)
        except StoreUnavailable as exc:
            # The leases run out and the events go out again: at least once.
            log.warning("webhooks.store_unavailable", error=str(exc))
        except Exception:
            log.exception("webhooks.delivery_failed")
        finally:
            self._done += delivered
            self.stats.delivered += len(delivered)

    async def _delete_done(self) -> None:
        """Delete the delivered events now, without a claim."""
        done, self._done = self._done, []
        if not done:
            return
        try:
            await self._outbox.delivered(self._owner, done)
        except StoreUnavailable as exc:
            # Their lease runs out and they go out again: at least once.
            log.warning("webhooks.store_unavailable", error=str(exc))

    async def _failed(self, row: OutboxRow, error: str) -> None:
        now = self._clock()
        dead = now - row.retry_from >= int(self._policy.retry_for * 1e6)
        delay = self._policy.delay(row.attempts, self._jitter())
        await self._outbox.retry(self._owner, row.seq, now + int(delay * 1e6), error, dead)
        if dead:
            self.stats.dead_lettered += 1
            log.warning("webhooks.dead_lettered", event_id=row.id, type=row.type,
                        conversation_id=row.conversation_id, attempts=row.attempts + 1,
                        error=error)
        else:
            self.stats.retried += 1
            log.info("webhooks.retry", event_id=row.id, type=row.type,
                     attempts=row.attempts + 1, error=error, delay_s=round(delay, 3))
