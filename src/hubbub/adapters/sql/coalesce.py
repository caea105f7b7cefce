"""Calls of one kind, coalesced: the keys asked for while one runs share the next one.

Every connection reads its user's row, the conversations its presence goes to and its
inbox's starting counts; every user going offline reads its open calls and writes its
`last_seen`. One at a time, each costs a connection from the pool and several hand-offs to
the driver (on SQLite, aiosqlite's thread), far more than the rows involved, and a
reconnect storm asks for thousands at once. A `Coalescer` runs one call for every key
asked for meanwhile (a statement `IN` the keys, or one write of them all), so a storm costs
one per batch, and a lone connection waits for nothing but its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Keys one statement asks for at most: well inside SQLite's bound on parameters, and
# a batch's rows stay a small read.
MAX_BATCH = 500

Fetch = Callable[[list[K]], Awaitable[dict[K, V]]]


class Coalescer(Generic[K, V]):
    """`await coalescer.get(key)`: the value `fetch` found for `key`, or `missing`; a
    `fetch` that raises fails its batch's callers, and the next batch still runs."""

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
                    for waiting in batch.values():
                        for future in waiting:
                            if not future.done():
                                future.set_exception(exc)
                    continue
                for key, waiting in batch.items():
                    value = found.get(key, self._missing)
                    for future in waiting:
                        if not future.done():
                            future.set_result(value)
        except BaseException:  # cancelled (shutdown): nobody is left waiting forever
            for waiting in (*batch.values(), *self._queued.values()):
                for future in waiting:
                    future.cancel()
            self._queued = {}
            raise
        finally:
            self._reading = None

