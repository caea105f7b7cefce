"""Reads of one kind, coalesced: the keys asked for while a read runs share the next one.

Every connection reads its user's row, the conversations its presence goes to and its
inbox's starting counts. One at a time, each read costs a connection from the pool and
several hand-offs to the driver (on SQLite, aiosqlite's thread), far more than the rows it
returns; a reconnect storm asks for thousands of them at once. A `Coalescer` runs one
statement for every key asked for meanwhile (`IN` the keys), so a storm costs a read per
batch, and a lone connection waits for nothing but its own read.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Keys one statement asks for at most: well inside SQLite's bound on parameters, and
# a batch's rows stay a small read.
MAX_BATCH = 500

Fetch = Callable[[list[K]], Awaitable[dict[K, V]]]


class Coalescer(Generic[K, V]):
    """`await coalescer.get(key)`: the value `fetch` found for `key`, or `missing`."""

    def __init__(self, fetch: Fetch[K, V], missing: V) -> None:
        self._fetch = fetch
        self._missing = missing
        self._queued: dict[K, list[asyncio.Future[V]]] = {}
        self._reading: asyncio.Task[None] | None = None

    async def get(self, key: K) -> V:
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._queued.setdefault(key, []).append(future)
        if self._reading is None:
            self._reading = asyncio.get_running_loop().create_task(self._read())
        return await future

    async def _read(self) -> None:
        batch: dict[K, list[asyncio.Future[V]]] = {}
        try:
            while self._queued:
                keys = list(self._queued)[:MAX_BATCH]
                batch = {key: self._queued.pop(key) for key in keys}
                try:
                    found = await self._fetch(keys)
                except Exception as exc:
                    _settle(batch, functools.partial(_fail, error=exc))
                    continue
                for key, waiting in batch.items():
                    value = found.get(key, self._missing)
                    for future in waiting:
                        if not future.done():
                            future.set_result(value)
        except BaseException:  # cancelled (shutdown): nobody is left waiting forever
            _settle(batch, asyncio.Future.cancel)
            _settle(self._queued, asyncio.Future.cancel)
            self._queued = {}
            raise
        finally:
            self._reading = None


def _settle(batch: dict[K, list[asyncio.Future[V]]],
            outcome: Callable[[asyncio.Future[V]], object]) -> None:
    for waiting in batch.values():
        for future in waiting:
            if not future.done():
                outcome(future)


def _fail(future: asyncio.Future[V], error: Exception) -> None:
    future.set_exception(error)
