"""First sightings of users, written together: a connection storm of new users costs one
write for all who arrive while the previous one runs, not one write each.

A user's row is written apart from the conversation batches (Writer.run_apart); on its own
each costs a SELECT and an INSERT, each a hand-off to the driver's thread. Arrivals queue
here instead; one job inserts every queued row (sorted by id, so two instances' jobs lock
the same rows in the same order and cannot deadlock) and reads them back, so a user that
another instance created meanwhile comes back as stored, renamed if the token says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hubbub.adapters.sql.dialect import Dialect
from hubbub.adapters.sql.schema import users
from hubbub.adapters.sql.shared import write_apart
from hubbub.adapters.sql.writer import Writer
from hubbub.domain.models import User

# Whether the token's name differs from a live user's stored one (users.py).
Renamed = Callable[[Row[Any], str | None], bool]
ToUser = Callable[[Row[Any]], User]
# user id -> (the latest token name, when first seen, who waits for the row)
_Batch = dict[str, tuple[str | None, int, list["asyncio.Future[User]"]]]


class Arrivals:
    def __init__(self, dialect: Dialect, writer: Writer, *, fallback: Callable[[str], str],
                 renamed: Renamed, to_user: ToUser) -> None:
        self._writer = writer
        self._fallback = fallback
        self._renamed = renamed
        self._to_user = to_user
        self._queued: _Batch = {}
        self._insert = dialect.insert(users).on_conflict_do_nothing()
        self._stored = select(users).where(dialect.one_of_bound(users.c.id, "user_ids")) \
            .order_by(users.c.id)
        self._flushing: asyncio.Task[None] | None = None

    async def arrive(self, user_id: str, name: str | None, now: int) -> User:
        """The user's row as stored once this arrival is written (with its neighbours')."""
        future: asyncio.Future[User] = asyncio.get_running_loop().create_future()
        queued = self._queued.get(user_id)
        if queued is None:
            self._queued[user_id] = (name, now, [future])
        else:
            queued[2].append(future)
            self._queued[user_id] = (name or queued[0], queued[1], queued[2])
        if self._flushing is None:
            self._flushing = asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued, {}
                try:
                    stored = await self._write(batch)
                except Exception as exc:
                    for _, _, waiting in batch.values():
                        _settle(waiting, exc)
                    continue
                for user_id, (_, _, waiting) in batch.items():
                    for future in waiting:
                        if not future.done():
                            future.set_result(stored[user_id])
        finally:
            self._flushing = None

    async def _write(self, batch: _Batch) -> dict[str, User]:
        async def _store_arrivals(conn: AsyncConnection) -> dict[str, User]:
            return await self._store(conn, batch)

        return await write_apart(self._writer, _store_arrivals)

    async def _store(self, conn: AsyncConnection, batch: _Batch) -> dict[str, User]:
        ids = sorted(batch)
        # Parameters of one cached statement (executemany), not a VALUES list compiled
        # afresh for every batch size.
        await conn.execute(self._insert, [
            {"id": uid, "name": batch[uid][0] or self._fallback(uid),
             "created_at": batch[uid][1], "last_seen": batch[uid][1]} for uid in ids])
        rows = (await conn.execute(self._stored, {"user_ids": ids})).all()
        stored: dict[str, User] = {}
        for row in rows:
            user = self._to_user(row)
            name = batch[row.id][0]
            if name and self._renamed(row, name):
                await conn.execute(update(users).where(users.c.id == row.id).values(name=name))
                user = User(user.id, name, user.created_at, user.last_seen, user.avatar_url,
                            user.metadata)
            stored[row.id] = user
        return stored


def _settle(waiting: list[asyncio.Future[User]], exc: BaseException) -> None:
    for future in waiting:
        if not future.done():
            future.set_exception(exc)
