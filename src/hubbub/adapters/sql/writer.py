"""Group commit: write jobs queued while a transaction runs share the next one.

One writer per store runs batches strictly one after another, so on SQLite there is never
a second writer to wait for, and futures resolve in commit order — the order in which the
services publish the resulting events.

A job may raise `ChatError` only *before* it writes (its checks come first); the batch then
goes on without it. Any other exception aborts the shared transaction, and every job of that
batch is retried alone, so one bad job never fails its neighbours.

Batched jobs (`run_batched`): consecutive queued items of the same runner are handed to it
together, so that e.g. fifty sends cost one UPDATE per conversation and one multi-row INSERT
instead of three statements each. The runner answers one result (or a `ChatError`, returned
rather than raised) per item, in order; on retry each item runs alone as a batch of one.

The writer keeps one connection checked out between batches: taking one from the pool and
giving it back costs a rollback (the pool's reset) and on SQLite two more hand-offs to the
driver's thread — measured ~100 µs per batch on one core, more than the statements of a
typical batch. After any failure that connection is given back and a fresh one taken.

Lock order (PostgreSQL, several instances): a batch takes the row lock of each conversation
it bumps and holds it until COMMIT. Two instances' batches that bump the same conversations
in different orders deadlock, and PostgreSQL breaks a deadlock only after `deadlock_timeout`
(1 s by default) — measured on three instances: ~165 changes/s instead of thousands. So a
job names the conversations it will lock (`keys`), and a batch with two or more of them
first locks them all in sorted order (`lock`), before any job runs. One key needs no order.
Jobs lock their conversation's row before any other row of it (shared.py), so these
locks order every row a batch writes.

Outgoing events (storage/outbox.py): a job queued inside `emitting(builder)` carries the
builder; after the job ran, the builder turns its result into events, and the batch stores
every job's events with one INSERT before COMMIT (`EmitEvents`). A job that raised a
`ChatError` emits nothing; a batch that aborts is retried job by job, each storing its own.
So events commit or roll back with their change. Without builders nothing is spent.

Names: a job is reported by its function's name (`_store_edit`, `_soft_delete`: what the
transaction does), a batch runner by its `name`, when a batch aborts or runs slow, so the
log says which writes were involved. Nothing per job is spent on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hubbub.domain.errors import ChatError
from hubbub.logs import get_logger
from hubbub.storage.outbox import EventBuilder, OutboxEvent, take_builder

log = get_logger("hubbub.writer")

T = TypeVar("T")
ItemT = TypeVar("ItemT")
T_co = TypeVar("T_co", covariant=True)
ItemT_contra = TypeVar("ItemT_contra", contravariant=True)

Job = Callable[[AsyncConnection], Awaitable[T]]
# Locks the rows of the given keys, in the order given (sorted), for this transaction.
Locker = Callable[[AsyncConnection, list[str]], Awaitable[None]]
# Stores the events of a transaction in it (adapters/sql/outbox.py: insert_events).
EmitEvents = Callable[[AsyncConnection, Sequence[OutboxEvent], int], Awaitable[None]]

# Enough to amortise one commit over many messages, small enough to keep a batch's latency
# (and the time other writes wait behind it) in the low milliseconds.
MAX_BATCH = 256
# A batch commits in milliseconds; one that took this long held every write queued behind
# it (on PostgreSQL, typically a lock wait, or a deadlock broken after deadlock_timeout).
SLOW_BATCH_S = 1.0


class BatchRunner(Protocol[ItemT_contra, T_co]):
    """Runs consecutive queued items together: one result, or a `ChatError` returned rather
    than raised, per item, in order."""

    @property
    def name(self) -> str:
        """What the runner stores, for reports."""

    async def __call__(self, conn: AsyncConnection, items: Sequence[ItemT_contra], /
                       ) -> Sequence[T_co | ChatError]: ...


class _Plain(Generic[T]):
    """A job queued by `run`, the future its caller awaits, the keys it locks."""

    __slots__ = ("emit", "future", "job", "keys")

    def __init__(self, job: Job[T], future: asyncio.Future[T], keys: tuple[str, ...],
                 emit: EventBuilder | None) -> None:
        self.job = job
        self.future = future
        self.keys = keys
        self.emit = emit


class _Item(Generic[ItemT, T]):
    """An item queued by `run_batched` for `runner`, with its future and keys."""

    __slots__ = ("emit", "future", "item", "keys", "runner")

    def __init__(self, runner: BatchRunner[ItemT, T], item: ItemT,
                 future: asyncio.Future[T], keys: tuple[str, ...],
                 emit: EventBuilder | None) -> None:
        self.runner = runner
        self.item = item
        self.future = future
        self.keys = keys
        self.emit = emit


_Queued = _Plain[Any] | _Item[Any, Any]


class Writer:
    """Runs write jobs in shared transactions, one batch at a time."""

    def __init__(self, engine: AsyncEngine, lock: Locker | None = None,
                 emit_events: EmitEvents | None = None) -> None:
        self._engine = engine
        self._lock = lock
        self._emit_events = emit_events
        # Called after a commit that stored events (wakes this instance's dispatcher).
        self.on_events: Callable[[], None] | None = None
        self._conn: AsyncConnection | None = None
        self._queue: list[_Queued] = []
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.jobs = 0
        # Batches whose shared transaction failed (their jobs were retried alone).
        self.aborted = 0
        # Jobs of the latest batch: how busy writing is (the webhook dispatcher yields).
        self.last_batch = 0

    @property
    def orders_locks(self) -> bool:
        """Whether `keys` matter here (worth a query to find them out)."""
        return self._lock is not None

    async def run(self, job: Job[T], keys: tuple[str, ...] = ()) -> T:
        """Queue `job` for the next transaction and wait until it has committed. `keys`:
        the conversations whose rows the job locks (see "Lock order" above)."""
        future: asyncio.Future[T] = self._future()
        self._queue.append(_Plain(job, future, keys, take_builder()))
        return await future

    async def run_apart(self, job: Job[T]) -> T:
        """Run a job that writes one row of no conversation's (a user, a call). Where locks
        are ordered (several writers), it runs in a transaction of its own: holding one row
        lock and waiting for nothing while holding it, it cannot close a deadlock cycle,
        whatever the batches of other instances lock. Elsewhere it is queued like `run`
        (SQLite has one writer, and a batch is cheaper than a transaction of its own)."""
        if self._lock is None:
            return await self.run(job)
        emit = take_builder()
        async with self._engine.begin() as conn:
            value = await job(conn)
            events = emit(value) if emit is not None else ()
            await self._store_events(conn, events)
        self._committed(events)
        return value

    async def run_batched(self, runner: BatchRunner[ItemT, T], item: ItemT,
                          keys: tuple[str, ...] = ()) -> T:
        """Queue `item` for `runner`, to be run together with the items queued next to it.

        `runner` must be the very same object for every item meant to share a call (keep it
        in an attribute, not a fresh bound method). Raises the item's `ChatError`, if any.
        """
        future: asyncio.Future[T] = self._future()
        self._queue.append(_Item(runner, item, future, keys, take_builder()))
        return await future

    def _future(self) -> asyncio.Future[Any]:
        """A future for the next queued entry; starts draining the queue if idle."""
        loop = asyncio.get_running_loop()
        if self._task is None:
            self._task = loop.create_task(self._drain())
        return loop.create_future()

    async def close(self) -> None:
        """Let queued jobs finish, then give the writer's connection back."""
        while self._task is not None:
            await asyncio.shield(self._task)
        await self._release()

    async def _connection(self) -> AsyncConnection:
        conn = self._conn
        if conn is None or conn.closed or conn.invalidated:
            conn = self._conn = await self._engine.connect()
        return conn

    async def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[:MAX_BATCH]
                del self._queue[:MAX_BATCH]
                await self._run_batch(batch)
        finally:
            self._task = None
            self.last_batch = 0

    async def _run_batch(self, batch: list[_Queued]) -> None:
        self.batches += 1
        self.jobs += len(batch)
        self.last_batch = len(batch)
        started = time.perf_counter()
        try:
            conn = await self._connection()
            async with conn.begin():
                if self._lock is not None:
                    keys = {key for entry in batch for key in entry.keys}
                    if len(keys) > 1:
                        await self._lock(conn, sorted(keys))
                outcomes, events = await _run_in(conn, batch)
                await self._store_events(conn, events)
        except Exception as exc:
            self.aborted += 1
            log.warning("writer.batch_aborted", error=type(exc).__name__,
                        jobs=_names(batch))
            await self._release()
            for entry in batch:
                await self._run_alone(entry)
            return
        self._committed(events)
        for entry, (ok, value) in zip(batch, outcomes, strict=True):
            if entry.future.done():
                continue
            if ok:
                entry.future.set_result(value)
            else:
                entry.future.set_exception(value)
        elapsed = time.perf_counter() - started
        if elapsed >= SLOW_BATCH_S:
            log.warning("writer.batch_slow", seconds=round(elapsed, 3), jobs=_names(batch))

    async def _store_events(self, conn: AsyncConnection,
                            events: Sequence[OutboxEvent]) -> None:
        if events:
            if self._emit_events is None:
                raise RuntimeError("events emitted on a writer that stores none")
            await self._emit_events(conn, events, time.time_ns() // 1000)

    def _committed(self, events: Sequence[OutboxEvent]) -> None:
        if events and self.on_events is not None:
            self.on_events()

    async def _run_alone(self, entry: _Queued) -> None:
        events: Sequence[OutboxEvent] = ()
        try:
            async with self._engine.begin() as conn:
                if isinstance(entry, _Plain):
                    value = await entry.job(conn)
                else:
                    (value,) = await entry.runner(conn, [entry.item])
                    if isinstance(value, ChatError):
                        raise value
                events = entry.emit(value) if entry.emit is not None else ()
                await self._store_events(conn, events)
        except BaseException as exc:
            if not entry.future.done():
                entry.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        self._committed(events)
        if not entry.future.done():
            entry.future.set_result(value)


async def _run_in(conn: AsyncConnection, batch: list[_Queued]
                  ) -> tuple[list[tuple[bool, Any]], list[OutboxEvent]]:
    """Run the batch's entries in order on `conn`: each plain job alone, each run of
    consecutive items of one runner in one call. (succeeded, result or error) per entry,
    and the events the entries that succeeded emit."""
    outcomes: list[tuple[bool, Any]] = []
    events: list[OutboxEvent] = []
    i, size = 0, len(batch)
    while i < size:
        entry = batch[i]
        if isinstance(entry, _Plain):
            try:
                value = await entry.job(conn)
            except ChatError as exc:
                outcomes.append((False, exc))
            else:
                outcomes.append((True, value))
                if entry.emit is not None:
                    events += entry.emit(value)
            i += 1
            continue
        runner = entry.runner
        items = [entry.item]
        end = i + 1
        while end < size:
            following = batch[end]
            if not isinstance(following, _Item) or following.runner is not runner:
                break
            items.append(following.item)
            end += 1
        results = await runner(conn, items)
        if len(results) != end - i:
            raise RuntimeError("a batch runner must answer once per item")
        for item, result in zip(batch[i:end], results, strict=True):
            ok = not isinstance(result, ChatError)
            outcomes.append((ok, result))
            if ok and item.emit is not None:
                events += item.emit(result)
        i = end
    return outcomes, events


def _names(batch: list[_Queued]) -> str:
    """What a batch did, for a log line: "store_sends×12, store_edit" (jobs by the name of
    their function, leading underscores dropped; runners by their `name`)."""
    counts: dict[str, int] = {}
    for entry in batch:
        name = (getattr(entry.job, "__name__", type(entry.job).__name__)
                if isinstance(entry, _Plain) else entry.runner.name).lstrip("_")
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(name if n == 1 else f"{name}×{n}" for name, n in counts.items())
