"""The hub's repairs as they run (the rules and the triggers: repair.py): at most one per
conversation, the periodic version check, and the check after a bus outage.

The hub owns the gates and the subscribers; a repair reads and delivers through the very
dicts and methods the hub gives it, so both always see the same state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection

from hubbub.bus.envelope import Envelope
from hubbub.delivery.connection import Connection
from hubbub.delivery.ordering import VersionGate
from hubbub.delivery.repair import (
    CHECK_BATCH,
    REPAIR_CONCURRENCY,
    REPAIR_PAGE,
    ChangeSource,
    Lag,
    RepairStats,
)
from hubbub.logs import get_logger
from hubbub.services.changes import Replay

log = get_logger("hubbub.hub")

Deliver = Callable[[Collection[Connection], Envelope], None]
Arm = Callable[[str, VersionGate[Envelope]], None]


class Repairs:
    """The repairs of one hub, from `changes` (the store)."""

    def __init__(self, changes: ChangeSource, gates: dict[str, VersionGate[Envelope]],
                 subscribers: dict[str, set[Connection]], deliver: Deliver, arm: Arm,
                 stats: RepairStats, hold: float, check_interval: float) -> None:
        self._changes = changes
        self._gates = gates
        self._subscribers = subscribers
        self._deliver = deliver
        self._arm = arm
        self._stats = stats
        self._check_interval = check_interval
        self._lag = Lag(hold)
        # At most one running per conversation, and the conversations whose bus resumed
        # while theirs ran (they get another one after it).
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._reading = asyncio.Semaphore(REPAIR_CONCURRENCY)
        self._checker: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()  # the checks after an outage

    def start(self) -> None:
        self._checker = asyncio.get_running_loop().create_task(self._check_forever())

    async def close(self) -> None:
        """Stop the version check and the repairs running (before the store closes)."""
        tasks = [*self._running.values(), *self._background]
        if self._checker is not None:
            tasks.append(self._checker)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._checker = None

    def forget(self, conversation_id: str) -> None:
        """The conversation lost its last local subscriber."""
        self._lag.forget(conversation_id)
        self._again.discard(conversation_id)

    def after_outage(self) -> None:
        """Repair every subscribed conversation the bus outage left behind."""
        task = asyncio.get_running_loop().create_task(self._compare_versions("resumed"))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def repair(self, conversation_id: str, trigger: str, again: bool = False) -> None:
        """Start a repair of the conversation from the last version delivered there, unless
        the baseline is still unknown or one is running (then, with `again`, start another
        after it: the running one may have read before the changes that called for it)."""
        gate = self._gates.get(conversation_id)
        if gate is None or gate.next_version is None:
            return
        if conversation_id in self._running:
            if again:
                self._again.add(conversation_id)
            return
        self._stats.runs[trigger] += 1
        self._lag.forget(conversation_id)
        replay = Replay(gate.pause())
        self._running[conversation_id] = asyncio.get_running_loop().create_task(
            self._run(conversation_id, gate, replay))

    async def _run(self, conversation_id: str, gate: VersionGate[Envelope],
                   replay: Replay) -> None:
        failed = False
        try:
            await self._replay(conversation_id, gate, replay)
        except Exception as exc:
            failed = True
            self._stats.failed += 1
            log.warning("hub.repair_failed", conversation_id=conversation_id,
                        error=type(exc).__name__)
        finally:
            self._running.pop(conversation_id, None)
        if self._gates.get(conversation_id) is not gate:
            return  # everyone left meanwhile
        now = asyncio.get_running_loop().time()
        released = gate.resume(now)
        if failed:
            released += gate.drain(now)  # give the gaps up, as without a repair
        recipients = self._subscribers.get(conversation_id)
        for event in released:
            if recipients:
                self._deliver(recipients, event)
        self._arm(conversation_id, gate)
        if conversation_id in self._again:
            self._again.discard(conversation_id)
            self.repair(conversation_id, "resumed")

    async def _replay(self, conversation_id: str, gate: VersionGate[Envelope],
                      replay: Replay) -> None:
        """Deliver the stored changes after `replay.start`, page by page, while the paused
        gate holds whatever the bus brings meanwhile."""
        while True:
            async with self._reading:
                page = await self._changes.changes_since(conversation_id, replay.after,
                                                         REPAIR_PAGE)
            recipients = self._subscribers.get(conversation_id)
            if self._gates.get(conversation_id) is not gate or not recipients:
                return
            events = replay.take(page)
            for event in events:
                self._deliver(recipients, event)
            self._stats.events += len(events)
            gate.advance(replay.after)
            if not page.has_more:
                return

    async def _check_forever(self) -> None:
        while True:
            await asyncio.sleep(self._check_interval)
            await self._compare_versions("check")

    async def _compare_versions(self, trigger: str) -> None:
        """Read the stored versions of the subscribed conversations, CHECK_BATCH per query,
        and repair those behind what was delivered there: after a bus outage every one
        behind at all, for the periodic check those stuck behind (repair.py `Lag`). Only
        conversations behind cost a repair's read."""
        ids = list(self._subscribers)
        try:
            for start in range(0, len(ids), CHECK_BATCH):
                stored = await self._changes.current_versions(ids[start:start + CHECK_BATCH])
                now = asyncio.get_running_loop().time()
                for conversation_id, version in stored.items():
                    gate = self._gates.get(conversation_id)
                    if gate is None or gate.next_version is None:
                        continue  # gone, or no baseline yet
                    delivered = gate.next_version - 1
                    if trigger == "resumed":
                        if version > delivered:
                            self.repair(conversation_id, trigger, again=True)
                    elif conversation_id not in self._running and self._lag.observe(
                            conversation_id, version, delivered, now):
                        self.repair(conversation_id, trigger)
        except Exception as exc:
            log.warning("hub.version_check_failed", trigger=trigger,
                        error=type(exc).__name__)
