"""Group commit: write jobs queued while a transaction runs share the next one.

One writer per store runs batches strictly one after another, so on SQLite there is never
a second writer to wait for, and futures resolve in commit order — the order in which the
services publish the resulting events.

A job may raise `ChatError` only *before* it writes (its checks come first); the batch then
goes on without it. Any other exception aborts the shared transaction, and every job of that
batch is retried alone, so one bad job never fails its neighbours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hubbub.domain.errors import ChatError

T = TypeVar("T")
Job = Callable[[AsyncConnection], Awaitable[Any]]

# Enough to amortise one commit over many messages, small enough to keep a batch's latency
# (and the time other writes wait behind it) in the low milliseconds.
MAX_BATCH = 256


class Writer:
    """Runs write jobs in shared transactions, one batch at a time."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._queue: list[tuple[Job, asyncio.Future[Any]]] = []
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.jobs = 0

    async def run(self, job: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Queue `job` for the next transaction and wait until it has committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((job, future))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def close(self) -> None:
        """Let queued jobs finish."""
        while self._task is not None:
            await asyncio.shield(self._task)

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[:MAX_BATCH]
                del self._queue[:MAX_BATCH]
                await self._run_batch(batch)
        finally:
            self._task = None

    async def _run_batch(self, batch: list[tuple[Job, asyncio.Future[Any]]]) -> None:
        self.batches += 1
        self.jobs += len(batch)
        outcomes: list[tuple[bool, Any]] = []
        try:
            async with self._engine.begin() as conn:
                for job, _ in batch:
                    try:
                        outcomes.append((True, await job(conn)))
                    except ChatError as exc:
                        outcomes.append((False, exc))
        except Exception:
            for job, future in batch:
                await self._run_alone(job, future)
            return
        for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    async def _run_alone(self, job: Job, future: asyncio.Future[Any]) -> None:
        try:
            async with self._engine.begin() as conn:
                value = await job(conn)
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        if not future.done():
            future.set_result(value)
