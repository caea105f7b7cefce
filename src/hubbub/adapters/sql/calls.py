"""`CallStore` on SQL, sharing the engine and the Writer of the other stores.

Every state change is one `UPDATE calls … WHERE id = ? AND state = <expected>` run by the
shared Writer: the row count says whether this instance won the transition, so two
instances (or two devices answering at once) can never both move a call.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hubbub.adapters.sql.coalesce import Coalescer
from hubbub.adapters.sql.dialect import Dialect
from hubbub.adapters.sql.schema import calls
from hubbub.adapters.sql.shared import SQL_ERRORS, unavailable, write_apart
from hubbub.adapters.sql.writer import Writer
from hubbub.domain.calls import Call, CallState, EndReason

_OPEN = (CallState.RINGING.value, CallState.ACTIVE.value)


def _to_call(row: Row[Any]) -> Call:
    return Call(
        id=row.id, conversation_id=row.conversation_id, caller_id=row.caller_id,
        callee_id=row.callee_id, call_type=row.call_type, state=CallState(row.state),
        created_at=row.created_at, answered_at=row.answered_at, ended_at=row.ended_at,
        end_reason=None if row.end_reason is None else EndReason(row.end_reason),
        answered_connection_id=row.answered_connection_id,
    )


class SqlCallStore:
    """Calls in the `calls` table. Each write touches one call's row, so it runs apart from
    the batches where that matters (Writer.run_apart) and never closes a lock cycle with
    other instances."""

    def __init__(self, engine: AsyncEngine, dialect: Dialect, writer: Writer) -> None:
        self._engine = engine
        self._dialect = dialect
        self._writer = writer
        # Read for every user whose last connection closed: shared by the users going
        # offline together, as after a dropped load balancer (coalesce.py).
        self._open_calls: Coalescer[str, list[Call]] = Coalescer(self._open_calls_of, [])
        self._open_calls_of_users = select(calls).where(
            or_(dialect.one_of_bound(calls.c.caller_id, "user_ids"),
                dialect.one_of_bound(calls.c.callee_id, "user_ids")),
            calls.c.state.in_(_OPEN))

    async def create_call(self, call: Call) -> bool:
        async def _insert_call(conn: AsyncConnection) -> bool:
            result = await conn.execute(self._dialect.insert(calls).values(
                id=call.id, conversation_id=call.conversation_id, caller_id=call.caller_id,
                callee_id=call.callee_id, call_type=call.call_type, state=call.state.value,
                created_at=call.created_at,
            ).on_conflict_do_nothing())
            return bool(result.rowcount)

        return await write_apart(self._writer, _insert_call)

    async def get_call(self, call_id: str) -> Call | None:
        rows = await self._read(select(calls).where(calls.c.id == call_id))
        return _to_call(rows[0]) if rows else None

    async def transition(self, call_id: str, expected: CallState, target: CallState,
                         now: int, end_reason: EndReason | None = None,
                         connection_id: str | None = None) -> Call | None:
        values: dict[str, Any] = {"state": target.value}
        if target is CallState.ACTIVE:
            values["answered_at"] = now
            values["answered_connection_id"] = connection_id
        if target is CallState.ENDED:
            values["ended_at"] = now
            values["end_reason"] = None if end_reason is None else end_reason.value
        statement = (update(calls)
                     .where(calls.c.id == call_id, calls.c.state == expected.value)
                     .values(**values).returning(*calls.c))

        async def _transition_call(conn: AsyncConnection) -> Call | None:
            row = (await conn.execute(statement)).first()
            return None if row is None else _to_call(row)

        return await write_apart(self._writer, _transition_call)

    async def open_calls_of(self, user_id: str) -> list[Call]:
        return list(await self._open_calls.get(user_id))

    async def _open_calls_of(self, user_ids: list[str]) -> dict[str, list[Call]]:
        wanted = set(user_ids)
        found: dict[str, list[Call]] = {}
        for row in await self._read(self._open_calls_of_users, {"user_ids": user_ids}):
            call = _to_call(row)
            for party in {call.caller_id, call.callee_id} & wanted:
                found.setdefault(party, []).append(call)
        return found

    async def ringing_before(self, created_before: int, limit: int) -> list[Call]:
        query = (select(calls)
                 .where(calls.c.state == CallState.RINGING.value,
                        calls.c.created_at < created_before)
                 .order_by(calls.c.created_at).limit(limit))
        return [_to_call(row) for row in await self._read(query)]

    async def open_calls(self, after: tuple[int, str] | None, limit: int) -> list[Call]:
        query = select(calls).where(calls.c.state.in_(_OPEN))
        if after is not None:
            created_at, call_id = after
            query = query.where(or_(
                calls.c.created_at > created_at,
                and_(calls.c.created_at == created_at, calls.c.id > call_id),
            ))
        query = query.order_by(calls.c.created_at, calls.c.id).limit(limit)
        return [_to_call(row) for row in await self._read(query)]

    async def list_calls(self, conversation_id: str, user_id: str, before: int | None,
                         limit: int) -> list[Call]:
        query = select(calls).where(
            calls.c.conversation_id == conversation_id,
            or_(calls.c.caller_id == user_id, calls.c.callee_id == user_id),
        )
        if before is not None:
            query = query.where(calls.c.created_at < before)
        query = query.order_by(calls.c.created_at.desc(), calls.c.id).limit(limit)
        return [_to_call(row) for row in await self._read(query)]

    async def _read(self, query: Any, params: dict[str, Any] | None = None
                    ) -> list[Row[Any]]:
        try:
            async with self._engine.connect() as conn:
                return list((await conn.execute(query, params)).all())
        except SQL_ERRORS as exc:
            raise unavailable(exc) from exc
