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

With a repair (delivery/repair.py) the gaps are filled from the store instead of given up:
the gate knows the baseline from the join (`start_at`; until then events wait, at most
`hold`), a repair `pause`s it — every event waits, even the next one, so that nothing the
repair delivers is also delivered from the bus — then `advance`s it past what it delivered
(held events at or below are covered by it) and `resume`s it.

`VersionGate` is the pure core (time is an argument); the hub owns one per conversation
with local subscribers and runs `expire` (or a repair) from a timer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

# A bound on memory when a gap never fills while events keep coming: past this many held
# events the gap is given up at once instead of after `hold` (not while a repair runs: it
# drops what it covered after each page it reads).
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

    __slots__ = ("_first_held_at", "_held", "_hold", "_stats", "_waiting", "next_version",
                 "paused")

    def __init__(self, hold: float, stats: OrderStats, *, wait_for_baseline: bool = False
                 ) -> None:
        self._hold = hold
        self._stats = stats
        self._held: dict[int, tuple[float, T]] = {}
        self._first_held_at = 0.0
        # The version expected next; None until the baseline is known: from `start_at`, or
        # else from the first event (at once, or after `hold` when waiting for `start_at`).
        self.next_version: int | None = None
        self._waiting = wait_for_baseline
        # While a repair runs every event waits (see the module doc).
        self.paused = False

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
        if not self.paused and (version == expected
                                or (expected is None and not self._waiting)):
            self._stats.in_order += 1
            self.next_version = version + 1
            if not self._held:
                return [item]
            return self._release_run([item], now)
        if (expected is not None and version < expected) or version in self._held:
            self._stats.late_dropped += 1
            return []
        if not self._held:
            self._first_held_at = now
        self._held[version] = (now, item)
        self._stats.held += 1
        if len(self._held) > MAX_HELD and not self.paused:
            return self._give_up_gap(now)
        return []

    def start_at(self, delivered: int, now: float) -> list[T]:
        """Set the baseline, unless one is set: everything up to `delivered` is known to
        the subscribers (the version their join answered with). Held events at or below it
        are dropped; returns the held ones that follow it."""
        if self.next_version is not None:
            return []
        self._waiting = False
        self.next_version = delivered + 1
        self._drop_through(delivered)
        return self._release_run([], now)

    def pause(self) -> int:
        """A repair starts: hold every event until `resume`. Returns the last version
        delivered, from which the repair reads (the baseline must be known)."""
        assert self.next_version is not None
        self.paused = True
        return self.next_version - 1

    def advance(self, delivered: int) -> None:
        """The repair delivered the changes up to `delivered`: expect the version after it,
        and drop the held events it covered."""
        assert self.next_version is not None
        if delivered >= self.next_version:
            self.next_version = delivered + 1
            self._drop_through(delivered)

    def resume(self, now: float) -> list[T]:
        """The repair is done: returns the held events that follow what it delivered. Those
        still held (behind a gap newer than the repair's reads) wait a full `hold` from
        now, so that one repair does not at once set off the next."""
        self.paused = False
        self._held = {version: (now, item) for version, (_, item) in self._held.items()}
        self._first_held_at = now
        return self._release_run([], now)

    def expire(self, now: float) -> list[T]:
        """Give up every gap whose oldest waiting event has been held for `hold` seconds
        (never while paused: the repair fills the gaps)."""
        released: list[T] = []
        while self._held and self._first_held_at + self._hold <= now and not self.paused:
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
        if self.next_version is None:  # the baseline never came: the first event sets it
            self._waiting = False
        else:
            self._stats.skipped_versions += lowest - self.next_version
        self.next_version = lowest
        return self._release_run([], now)

    def _drop_through(self, version: int) -> None:
        """Forget the held events at or below `version` (a repair or the join covered them)."""
        for held in [v for v in self._held if v <= version]:
            del self._held[held]
        if self._held:
            self._first_held_at = min(arrived for arrived, _ in self._held.values())

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
