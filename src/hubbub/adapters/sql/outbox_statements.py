"""The INSERT of a batch's outgoing events, one implementation per database, run on the
Writer's connection inside its transaction (like send_statements.py, and for the same
reason: through SQLAlchemy's executemany it cost a third of a send batch's time)."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

COLUMNS = ("id", "type", "conversation_id", "version", "data", "created_at", "state",
           "attempts", "next_attempt_at", "retry_from")
EventRow = tuple[Any, ...]  # the values of COLUMNS, in order


class OutboxStatements(Protocol):
    async def insert(self, rows: list[EventRow]) -> None: ...


class SqliteOutboxStatements:
    __slots__ = ("_db",)
    _INSERT = (f"INSERT INTO webhook_outbox ({', '.join(COLUMNS)}) "
               f"VALUES ({', '.join('?' * len(COLUMNS))})")

    def __init__(self, db: Any) -> None:
        self._db = db

    async def insert(self, rows: list[EventRow]) -> None:
        await self._db.executemany(self._INSERT, rows)


class PostgresOutboxStatements:
    __slots__ = ("_conn",)
    _INSERT = (
        f"INSERT INTO webhook_outbox ({', '.join(COLUMNS)}) "
        "SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::bigint[], "
        "$5::text[], $6::bigint[], $7::varchar[], $8::integer[], $9::bigint[], $10::bigint[])"
    )

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def insert(self, rows: list[EventRow]) -> None:
        await self._conn.exec_driver_sql(self._INSERT,
                                         tuple(list(c) for c in zip(*rows, strict=True)))
