"""`UserStore` on SQL: a user's row is written apart from the batches (Writer.run_apart)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hubbub.adapters.sql.dialect import Dialect
from hubbub.adapters.sql.schema import users
from hubbub.adapters.sql.shared import ReadConnection, write_apart
from hubbub.adapters.sql.writer import Writer
from hubbub.domain.models import User


def placeholder_name(user_id: str) -> str:
    """The name of a user whose token carried none, or who never connected yet."""
    return f"user-{user_id[:8]}"


class SqlUserStore:
    def __init__(self, engine: AsyncEngine, dialect: Dialect, writer: Writer) -> None:
        self._engine = engine
        self._dialect = dialect
        self._writer = writer

    async def upsert_user(self, user_id: str, name: str | None, now: int) -> User:
        async def _store_user(conn: AsyncConnection) -> User:
            row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
            if row is None:
                fallback = name or placeholder_name(user_id)
                statement = self._dialect.insert(users).values(
                    id=user_id, name=fallback, created_at=now, last_seen=now
                ).on_conflict_do_nothing()
                await conn.execute(statement)
                return User(user_id, fallback, now, now)
            if name and name != row.name:
                await conn.execute(update(users).where(users.c.id == user_id).values(name=name))
                return User(user_id, name, row.created_at, row.last_seen)
            return User(user_id, row.name, row.created_at, row.last_seen)

        return await write_apart(self._writer, _store_user)

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
        async def _stamp_last_seen(conn: AsyncConnection) -> None:
            await conn.execute(update(users).where(users.c.id == user_id).values(last_seen=now))

        await write_apart(self._writer, _stamp_last_seen)

    async def get_user(self, user_id: str) -> User | None:
        async with ReadConnection(self._engine) as conn:
            row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
        return None if row is None else User(row.id, row.name, row.created_at, row.last_seen)
