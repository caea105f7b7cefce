"""`UserStore` on SQL: a user's row is written apart from the batches (Writer.run_apart)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hubbub.adapters.sql.arrivals import Arrivals
from hubbub.adapters.sql.coalesce import Coalescer
from hubbub.adapters.sql.dialect import Dialect
from hubbub.adapters.sql.schema import users
from hubbub.adapters.sql.shared import ReadConnection, write_apart
from hubbub.adapters.sql.writer import Writer
from hubbub.domain.models import User

# What an erased user's row keeps of its name: nothing that identifies the person.
ERASED_NAME = ""

_BY_ID = select(users).where(users.c.id == bindparam("user_id"))
_STAMP = update(users).where(users.c.id == bindparam("user_id")).values(
    last_seen=bindparam("at"))


def _to_user(row: Row[Any]) -> User:
    return User(row.id, row.name, row.created_at, row.last_seen, row.avatar_url,
                row.metadata, row.erased_at)


def _renamed(row: Row[Any], name: str | None) -> bool:
    """The token names a live user otherwise than its row does."""
    return bool(name) and name != row.name and row.erased_at is None


def placeholder_name(user_id: str) -> str:
    """The name of a user whose token carried none, or who never connected yet."""
    return f"user-{user_id[:8]}"


class SqlUserStore:
    def __init__(self, engine: AsyncEngine, dialect: Dialect, writer: Writer) -> None:
        self._engine = engine
        self._dialect = dialect
        self._writer = writer
        self._arrivals = Arrivals(dialect, writer, fallback=placeholder_name,
                                  renamed=_renamed, to_user=_to_user)
        self._known: Coalescer[str, Row[Any] | None] = Coalescer(self._rows, None)
        self._by_ids = select(users).where(dialect.one_of_bound(users.c.id, "user_ids"))
        self._last_seen: dict[str, int] = {}  # user id -> the stamp waiting to be written
        self._stamps: Coalescer[str, None] = Coalescer(self._stamp, None)

    async def _rows(self, user_ids: list[str]) -> dict[str, Row[Any] | None]:
        async with ReadConnection(self._engine) as conn:
            rows = (await conn.execute(self._by_ids, {"user_ids": user_ids})).all()
        return {row.id: row for row in rows}

    async def upsert_user(self, user_id: str, name: str | None, now: int) -> User:
        # Every connection comes here: a known user whose name did not change is one read
        # (shared with the connections arriving meanwhile: coalesce.py), and only a new or
        # renamed one waits for the writer (bench: the connect path).
        known = await self._known.get(user_id)
        if known is not None and not _renamed(known, name):
            return _to_user(known)

        if known is None:
            return await self._arrivals.arrive(user_id, name, now)

        async def _rename_user(conn: AsyncConnection) -> User:
            row = (await conn.execute(_BY_ID, {"user_id": user_id})).one()
            if name and _renamed(row, name):
                await conn.execute(update(users).where(users.c.id == user_id).values(name=name))
                return User(user_id, name, row.created_at, row.last_seen, row.avatar_url,
                            row.metadata)
            return _to_user(row)

        return await write_apart(self._writer, _rename_user)

    async def ensure_users(self, user_ids: list[str], now: int) -> None:
        if not user_ids:
            return
        rows = [{"id": uid, "name": placeholder_name(uid), "created_at": now,
                 "last_seen": None} for uid in dict.fromkeys(user_ids)]

        async def _make_users(conn: AsyncConnection) -> None:
            await conn.execute(self._dialect.insert(users).values(rows)
                               .on_conflict_do_nothing())

        await write_apart(self._writer, _make_users)

    async def touch_user(self, user_id: str, now: int) -> None:
        # Every user whose last connection closes comes here: stamps queued meanwhile
        # share one statement (a dropped load balancer takes thousands at once).
        self._last_seen[user_id] = max(now, self._last_seen.get(user_id, now))
        await self._stamps.get(user_id)

    async def _stamp(self, user_ids: list[str]) -> dict[str, None]:
        # Taken before the first await: a stamp queued from here on goes in the next write.
        stamps = [{"user_id": uid, "at": self._last_seen.pop(uid)} for uid in user_ids]

        async def _stamp_last_seen(conn: AsyncConnection) -> None:
            await conn.execute(_STAMP, stamps)

        await write_apart(self._writer, _stamp_last_seen)
        return {}

    async def get_user(self, user_id: str) -> User | None:
        async with ReadConnection(self._engine) as conn:
            row = (await conn.execute(select(users).where(
                users.c.id == user_id, users.c.erased_at.is_(None)))).first()
        return None if row is None else _to_user(row)

    async def put_user(self, user_id: str, name: str | None, avatar_url: str | None,
                       metadata: str | None, now: int) -> tuple[User, bool]:
        async def _put_user(conn: AsyncConnection) -> tuple[User, bool]:
            row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
            if row is None:
                await conn.execute(self._dialect.insert(users).values(
                    id=user_id, name=name or placeholder_name(user_id), created_at=now,
                    avatar_url=avatar_url, metadata=metadata,
                ).on_conflict_do_nothing())
            else:
                revived = row.erased_at is not None
                kept = row.name if row.name and not revived else placeholder_name(user_id)
                await conn.execute(update(users).where(users.c.id == user_id).values(
                    name=name or kept, avatar_url=avatar_url, metadata=metadata,
                    erased_at=None))
            stored = (await conn.execute(select(users).where(users.c.id == user_id))).one()
            return _to_user(stored), row is None or row.erased_at is not None

        return await write_apart(self._writer, _put_user)

    async def erase_user(self, user_id: str, now: int) -> bool:
        async def _erase_user(conn: AsyncConnection) -> bool:
            erased_at = (await conn.execute(select(users.c.erased_at).where(
                users.c.id == user_id))).first()
            if erased_at is None:
                return False
            await conn.execute(update(users).where(users.c.id == user_id).values(
                name=ERASED_NAME, avatar_url=None, metadata=None,
                erased_at=erased_at[0] or now))
            return True

        return await write_apart(self._writer, _erase_user)
