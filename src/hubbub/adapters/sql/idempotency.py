"""`IdempotencyStore` on SQL: one row per key, claimed with INSERT … ON CONFLICT DO NOTHING
so that of two requests racing with one key exactly one creates."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hubbub.adapters.sql.dialect import Dialect
from hubbub.adapters.sql.schema import idempotency_keys
from hubbub.adapters.sql.shared import write_apart
from hubbub.adapters.sql.writer import Writer


class SqlIdempotencyStore:
    def __init__(self, dialect: Dialect, writer: Writer) -> None:
        self._dialect = dialect
        self._writer = writer

    async def claim_key(self, key: str, fingerprint: str, resource_id: str,
                        now: int) -> tuple[str, str]:
        async def _claim_idempotency_key(conn: AsyncConnection) -> tuple[str, str]:
            await conn.execute(self._dialect.insert(idempotency_keys).values(
                key=key, fingerprint=fingerprint, resource_id=resource_id, created_at=now,
            ).on_conflict_do_nothing())
            row = (await conn.execute(
                select(idempotency_keys.c.fingerprint, idempotency_keys.c.resource_id)
                .where(idempotency_keys.c.key == key))).one()
            return str(row.fingerprint), str(row.resource_id)

        return await write_apart(self._writer, _claim_idempotency_key)

    async def release_key(self, key: str, resource_id: str) -> None:
        async def _release_idempotency_key(conn: AsyncConnection) -> None:
            await conn.execute(delete(idempotency_keys).where(
                idempotency_keys.c.key == key, idempotency_keys.c.resource_id == resource_id))

        await write_apart(self._writer, _release_idempotency_key)
