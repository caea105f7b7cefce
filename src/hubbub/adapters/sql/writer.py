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
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hubbub.domain.errors import ChatError

T = TypeVar("T")
ItemT = TypeVar("ItemT")
Job = Callable[[AsyncConnection], Awaitable[Any]]
# Locks the rows of the given keys, in the order given (sorted), for this transaction.
Locker = Callable[[AsyncConnection, list[str]], Awaitable[None]]
BatchRunner = Callable[[AsyncConnection, list[ItemT]], Awaitable[list[T | ChatError]]]

# Enough to amortise one commit over many messages, small enough to keep a batch's latency
# (and the time other writes wait behind it) in the low milliseconds.
MAX_BATCH = 256

# The item of a plain job (a callable run on its own), as opposed to a batched item.
_PLAIN: Any = object()

# (a job, or the runner of a batched item; the item, or _PLAIN; the caller's future;
# the keys of the rows the job will lock)
_Entry = tuple[Any, Any, "asyncio.Future[Any]", tuple[str, ...]]


class Writer:
    """Runs write jobs in shared transactions, one batch at a time."""

    def __init__(self, engine: AsyncEngine, lock: Locker | None = None) -> None:
        self._engine = engine
        self._lock = lock
        self._conn: AsyncConnection | None = None
        self._queue: list[_Entry] = []
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.jobs = 0
        # Batches whose shared transaction failed (their jobs were retried alone).
        self.aborted = 0

    @property
    def orders_locks(self) -> bool:
        """Whether `keys` matter here (worth a query to find them out)."""
        return self._lock is not None

    async def run(self, job: Callable[[AsyncConnection], Awaitable[T]],
                  keys: tuple[str, ...] = ()) -> T:
        """Queue `job` for the next transaction and wait until it has committed. `keys`:
        the conversations whose rows the job locks (see "Lock order" above)."""
        result: T = await self._submit(job, _PLAIN, keys)
        return result

    async def run_apart(self, job: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run a job that writes one row of no conversation's (a user, a call). Where locks
        are ordered (several writers), it runs in a transaction of its own: holding one row
        lock and waiting for nothing while holding it, it cannot close a deadlock cycle,
        whatever the batches of other instances lock. Elsewhere it is queued like `run`
        (SQLite has one writer, and a batch is cheaper than a transaction of its own)."""
        if self._lock is None:
            return await self.run(job)
        async with self._engine.begin() as conn:
            return await job(conn)

    async def run_batched(self, runner: BatchRunner[ItemT, T], item: ItemT,
                          keys: tuple[str, ...] = ()) -> T:
        """Queue `item` for `runner`, to be run together with the items queued next to it.

        `runner` must be the very same object for every item meant to share a call (keep it
        in an attribute, not a fresh bound method). Raises the item's `ChatError`, if any.
        """
        result: T = await self._submit(runner, item, keys)
        return result

    def _submit(self, job: Any, item: Any, keys: tuple[str, ...]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((job, item, future, keys))
        if self._task is None:
            self._task = loop.create_task(self._drain())
        return future

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

    async def _run_batch(self, batch: list[_Entry]) -> None:
        self.batches += 1
        self.jobs += len(batch)
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn = await self._connection()
            async with conn.begin():
                if self._lock is not None:
                    keys = {key for entry in batch for key in entry[3]}
                    if len(keys) > 1:
                        await self._lock(conn, sorted(keys))
                i, size = 0, len(batch)
                while i < size:
                    job, item, _, _ = batch[i]
                    if item is _PLAIN:
                        try:
                            outcomes.append((True, await job(conn)))
                        except ChatError as exc:
                            outcomes.append((False, exc))
                        i += 1
                        continue
                    end = i + 1
                    while end < size and batch[end][0] is job and batch[end][1] is not _PLAIN:
                        end += 1
                    results = await job(conn, [entry[1] for entry in batch[i:end]])
                    if len(results) != end - i:
                        raise RuntimeError("a batch runner must answer once per item")
                    outcomes += [(not isinstance(r, ChatError), r) for r in results]
                    i = end
        except Exception:
            self.aborted += 1
            await self._release()
            for job, item, future, _ in batch:
                await self._run_alone(job, item, future)
            return
        for (_, _, future, _), (ok, value) in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    async def _run_alone(self, job: Any, item: Any, future: asyncio.Future[Any]) -> None:
        try:
            async with self._engine.begin() as conn:
                if item is _PLAIN:
                    value = await job(conn)
                else:
                    (value,) = await job(conn, [item])
                    if isinstance(value, ChatError):
                        raise value
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        if not future.done():
            future.set_result(value)
