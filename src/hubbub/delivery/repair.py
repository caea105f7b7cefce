"""Repairing what the bus lost, so that every subscribed connection gets every change.

Persist first, publish second (docs/ARCHITECTURE.md): an event Redis dropped while it was
down, or one whose instance crashed between commit and publish, never reaches the other
instances, though its change is stored. A conversation's next event would show the gap —
but in a quiet conversation there may be no next event. So the hub repairs by itself: it
reads the changes after the last version it delivered from the store (services/changes.py
turns them into change events) and delivers them in order, on three triggers:

- the bus resumed after an outage: every conversation with local subscribers whose stored
  version (one batched query, as for the check) is ahead of the delivered one;
- a version gate held an early event for the whole hold: the gap it waits for;
- a periodic check (`Lag`): one query for the stored versions of every conversation with
  local subscribers, per interval, not per event. A conversation is repaired when the
  store was ahead of what was delivered at one check, and at a check at least `hold`
  later nothing more has been delivered. Events still flowing (delivered version moving)
  are left to the gate, which sees any gap among them; a stuck one is a lost last event.

This module is the pure part and the seam; delivery/repairs.py runs the repairs for the
hub (delivery/hub.py).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Protocol

from hubbub.domain.models import SyncPage

# Changes read per query of a repair: the default page of `SyncMessages`, so a repair of a
# long outage goes out in steps of a few hundred KiB per subscriber, never all at once.
REPAIR_PAGE = 100
# Repairs reading at once: a Redis outage leaves many conversations to repair together, and
# they must not take the store's whole pool (PostgreSQL: 20 connections) from requests.
REPAIR_CONCURRENCY = 4
# How often the stored versions are checked. A crashed instance's last message reaches the
# other instances' quiet conversations within two intervals; the check is one primary-key
# query per interval (per CHECK_BATCH conversations): measured on PostgreSQL for 5,000
# subscribed conversations, ~25 ms of the instance's CPU, about 1 % of a core.
CHECK_INTERVAL_S = 2.0
# Conversations per check query: one array parameter on PostgreSQL, and well inside
# SQLite's 32,766 parameters.
CHECK_BATCH = 5000


class ChangeSource(Protocol):
    """Where the hub reads what it missed (services/changes.py `ChangeFeed`, on the store)."""

    async def changes_since(self, conversation_id: str, version: int, limit: int) -> SyncPage:
        """At most `limit` changes after `version`: each changed message once, in its latest
        state, ascending by its latest version; `last_version` is where the next page
        starts, `has_more` whether there is one."""

    async def current_versions(self, conversation_ids: Collection[str]) -> dict[str, int]:
        """The stored version of each conversation (unknown ones are left out)."""


@dataclass(slots=True)
class RepairStats:
    """What the repairs did, for /metrics (`hubbub_repair_*`)."""

    runs: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("resumed", "gap", "check"), 0))
    events: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class _Behind:
    delivered: int
    seen_at: float


class Lag:
    """The periodic check's memory: per conversation whose stored version was ahead of the
    delivered one, what had been delivered then, and when that was seen."""

    __slots__ = ("_behind", "_hold")

    def __init__(self, hold: float) -> None:
        self._hold = hold
        self._behind: dict[str, _Behind] = {}

    def observe(self, conversation_id: str, stored: int, delivered: int, now: float) -> bool:
        """Take one check's reading; True when the conversation needs a repair."""
        if stored <= delivered:
            self._behind.pop(conversation_id, None)
            return False
        seen = self._behind.get(conversation_id)
        if seen is None or seen.delivered != delivered:
            # Newly behind, or deliveries moved since: events are flowing, look again later.
            self._behind[conversation_id] = _Behind(delivered, now)
            return False
        if now - seen.seen_at < self._hold:
            return False
        del self._behind[conversation_id]
        return True

    def forget(self, conversation_id: str) -> None:
        """The conversation was repaired or has no local subscribers any more."""
        self._behind.pop(conversation_id, None)
