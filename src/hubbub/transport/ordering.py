"""Version order per conversation (PROTOCOL.md §2): "the change events of a conversation
reach each subscribed connection in version order, whichever instance committed them".

Why events can arrive out of order: each instance publishes after its own commit, through
its own connection to the bus. Instance A commits version 5 and queues the publish; B,
which waited on the conversation's row lock, commits 6 a moment later and its publish can
reach Redis first. Redis keeps the order of each publisher, not across publishers.

The rule: versions have no gaps, so the hub knows which version comes next. An event with
that version is delivered at once, with any held successors. An early event is held until
the missing versions arrive, but never longer than `hold` seconds after it arrived: then the
gap is given up (the event was lost — Redis pub/sub is at-most-once — or its publisher
crashed after commit) and delivery goes on; clients see the gap and `SyncMessages`. An event
older than what was already delivered is dropped, since delivering it would break the order;
the client that missed it saw the gap too. The first event after (re)subscribing sets the
baseline: whatever a client missed before it joined, it reads from history or sync.

`VersionGate` is the pure core (time is an argument); the hub owns one per conversation
with local subscribers and runs `expire` from a timer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

# A bound on memory when a gap never fills while events keep coming: past this many held
# events the gap is given up at once instead of after `hold`.
MAX_HELD = 10_000


@dataclass(slots=True)
class OrderStats:
    """What the gates did, for metrics and for measuring how often reordering happens."""

    in_order: int = 0
    held: int = 0
    skipped_versions: int = 0
    late_dropped: int = 0
    max_wait: float = 0.0


class VersionGate(Generic[T]):
    """Releases the items of one conversation in version order."""

    __slots__ = ("_first_held_at", "_held", "_hold", "_stats", "next_version")

    def __init__(self, hold: float, stats: OrderStats) -> None:
        self._hold = hold
        self._stats = stats
        self._held: dict[int, tuple[float, T]] = {}
        self._first_held_at = 0.0
        # The version expected next; None until the first event sets the baseline.
        self.next_version: int | None = None

    @property
    def holding(self) -> int:
        return len(self._held)

    @property
    def deadline(self) -> float | None:
        """When `expire` must run next (None while nothing is held)."""
        return self._first_held_at + self._hold if self._held else None

    def offer(self, version: int, item: T, now: float) -> list[T]:
        """Take one event; returns the events that may be delivered now, in order."""
        expected = self.next_version
        if expected is None or version == expected:
            self._stats.in_order += 1
            self.next_version = version + 1
            if not self._held:
                return [item]
            return self._release_run([item], now)
        if version < expected or version in self._held:
            self._stats.late_dropped += 1
            return []
        if not self._held:
            self._first_held_at = now
        self._held[version] = (now, item)
        self._stats.held += 1
        if len(self._held) > MAX_HELD:
            return self._give_up_gap(now)
        return []

    def expire(self, now: float) -> list[T]:
        """Give up every gap whose oldest waiting event has been held for `hold` seconds."""
        released: list[T] = []
        while self._held and self._first_held_at + self._hold <= now:
            released += self._give_up_gap(now)
        return released

    def drain(self, now: float) -> list[T]:
        """Everything held, in version order (when the bus resumed or the gate goes away)."""
        released: list[T] = []
        while self._held:
            released += self._give_up_gap(now)
        return released

    def _give_up_gap(self, now: float) -> list[T]:
        lowest = min(self._held)
        assert self.next_version is not None
        self._stats.skipped_versions += lowest - self.next_version
        self.next_version = lowest
        return self._release_run([], now)

    def _release_run(self, released: list[T], now: float) -> list[T]:
        """Move the held events that continue the sequence into `released`."""
        assert self.next_version is not None
        held = self._held
        while self.next_version in held:
            arrived, item = held.pop(self.next_version)
            self._stats.max_wait = max(self._stats.max_wait, now - arrived)
            released.append(item)
            self.next_version += 1
        if held:
            self._first_held_at = min(arrived for arrived, _ in held.values())
        return released
