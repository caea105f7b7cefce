"""`OutboxStore` on SQL: the events the writer stores with each change, and the claims,
completions and retries of the dispatchers (hubbub/webhooks/).

Claims (`claim`): each conversation's oldest pending event is its head, and only a head is
ever leased, so a conversation has at most one event in flight and its events go out in
commit order. On PostgreSQL the heads are locked `FOR UPDATE SKIP LOCKED` while the lease is
written: two dispatchers claiming at once skip each other's rows instead of waiting, and a
leased row stays out of every other claim until its lease ends (SQLite renders no
`FOR UPDATE`: its one writer runs claims one at a time anyway). Completions are conditional
on the lease's owner, so a dispatcher whose lease ran out cannot undo the newer claim.

Dispatcher writes go through the Writer apart from the batches (`write_apart`): on SQLite
they share its one connection, on PostgreSQL each is a transaction of its own that takes no
conversation lock, so it cannot deadlock with the sends.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hubbub.adapters.sql.dialect import Dialect
from hubbub.adapters.sql.outbox_statements import EventRow
from hubbub.adapters.sql.schema import conversations, webhook_outbox
from hubbub.adapters.sql.shared import ReadConnection, write_apart
from hubbub.adapters.sql.writer import Writer
from hubbub.storage.outbox import OutboxEvent, OutboxRow, OutboxStats

PENDING = "pending"
DEAD = "dead"
_o = webhook_outbox


def micros() -> int:
    return time.time_ns() // 1000


class EventIds:
    """`webhook-id`s: a random prefix per process and a counter (a uuid4 each cost more
    than the rest of the event's row)."""

    def __init__(self) -> None:
        self._prefix = "msg_" + os.urandom(8).hex()
        self._count = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._count):012x}"


class EventInserter:
    """The Writer's hook (`EmitEvents`): stores a transaction's events in it with one
    INSERT, after one SELECT for the versions of conversations whose events carry none."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._ids = EventIds()

    async def __call__(self, conn: AsyncConnection, events: Sequence[OutboxEvent],
                       now: int) -> None:
        unversioned = {e.conversation_id for e in events if e.version is None}
        versions: dict[str, int] = {}
        if unversioned:
            found = await conn.execute(select(conversations.c.id, conversations.c.version)
                                       .where(conversations.c.id.in_(unversioned)))
            versions = {row.id: int(row.version) for row in found}
        new_id = self._ids
        rows: list[EventRow] = [(
            new_id(), e.type, e.conversation_id,
            e.version if e.version is not None else versions.get(e.conversation_id, 0),
            e.data.decode(), now, PENDING, 0, now, now) for e in events]
        await (await self._dialect.outbox_statements(conn)).insert(rows)


async def _runs_from(conn: AsyncConnection, heads: list[str], run: int) -> list[int]:
    """The first `run` pending events of each claimed head's conversation. The heads are
    locked, and no other claim leases what follows a head, so the rest needs no lock.

    One index range of `run` entries per conversation (a LIMIT each, under UNION ALL):
    a window over the conversations' pending events read all of them, 13 ms a claim with
    30,000 pending on SQLite, inside the writer's batch (docs/DECISIONS.md)."""
    firsts = [select(_o.c.seq).where(_o.c.conversation_id == conversation_id,
                                     _o.c.state == PENDING)
              .order_by(_o.c.seq).limit(run).subquery() for conversation_id in heads]
    return [row.seq for row in await conn.execute(
        union_all(*(select(first.c.seq) for first in firsts)))]


async def _delete_leased(conn: AsyncConnection, owner: str, seqs: Sequence[int]) -> int:
    """Delete delivered events still leased by `owner` (a dispatcher whose lease ran out
    cannot delete the newer claim's); how many were."""
    result = await conn.execute(
        delete(_o).where(_o.c.seq.in_(list(seqs)), _o.c.lease_owner == owner))
    return int(result.rowcount)


def _to_row(row: Any) -> OutboxRow:
    return OutboxRow(seq=row.seq, id=row.id, type=row.type,
                     conversation_id=row.conversation_id, version=row.version,
                     data=row.data.encode(), created_at=row.created_at,
                     attempts=row.attempts, retry_from=row.retry_from,
                     last_error=row.last_error)


class SqlOutboxStore:
    """The outbox of one database, on its engine and Writer."""

    def __init__(self, engine: AsyncEngine, writer: Writer) -> None:
        self._engine = engine
        self._writer = writer

    async def claim(self, owner: str, now: int, lease_until: int, limit: int,
                    run: int = 1, delivered: Sequence[int] = ()) -> list[OutboxRow]:
        # Each conversation's oldest pending event, from the index alone (one pass, no
        # query per row), then those of them that are due and not leased.
        oldest = (select(func.min(_o.c.seq).label("seq")).where(_o.c.state == PENDING)
                  .group_by(_o.c.conversation_id).subquery())
        heads = (
            select(_o.c.seq, _o.c.conversation_id).join(oldest, oldest.c.seq == _o.c.seq)
            .where(_o.c.next_attempt_at <= now,
                   or_(_o.c.lease_until.is_(None), _o.c.lease_until < now))
            .order_by(_o.c.seq).limit(limit)
            .with_for_update(skip_locked=True, of=_o)
        )

        async def _claim_events(conn: AsyncConnection) -> list[OutboxRow]:
            if delivered:
                await _delete_leased(conn, owner, delivered)
            found = (await conn.execute(heads)).all()
            if not found:
                return []
            seqs = ([row.seq for row in found] if run == 1 else
                    await _runs_from(conn, [row.conversation_id for row in found], run))
            rows = await conn.execute(
                update(_o).where(_o.c.seq.in_(seqs))
                .values(lease_owner=owner, lease_until=lease_until).returning(*_o.c))
            return sorted((_to_row(row) for row in rows), key=lambda r: r.seq)

        return await write_apart(self._writer, _claim_events)

    async def delivered(self, owner: str, seqs: Sequence[int]) -> int:
        async def _delete_delivered(conn: AsyncConnection) -> int:
            return await _delete_leased(conn, owner, seqs)

        return await write_apart(self._writer, _delete_delivered)

    async def release(self, owner: str, seqs: Sequence[int]) -> None:
        async def _release_unsent(conn: AsyncConnection) -> None:
            await conn.execute(
                update(_o).where(_o.c.seq.in_(list(seqs)), _o.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None))

        await write_apart(self._writer, _release_unsent)

    async def retry(self, owner: str, seq: int, next_attempt_at: int, error: str,
                    dead: bool) -> bool:
        async def _record_failure(conn: AsyncConnection) -> bool:
            result = await conn.execute(
                update(_o).where(_o.c.seq == seq, _o.c.lease_owner == owner)
                .values(attempts=_o.c.attempts + 1, next_attempt_at=next_attempt_at,
                        last_error=error[:200], lease_owner=None, lease_until=None,
                        state=DEAD if dead else PENDING))
            return bool(result.rowcount)

        return await write_apart(self._writer, _record_failure)

    async def dead_letters(self, limit: int, after: int = 0) -> list[OutboxRow]:
        async with ReadConnection(self._engine) as conn:
            rows = await conn.execute(select(_o).where(_o.c.state == DEAD, _o.c.seq > after)
                                      .order_by(_o.c.seq).limit(limit))
            return [_to_row(row) for row in rows]

    async def replay(self, ids: Sequence[str] | None, now: int) -> int:
        chosen = _o.c.state == DEAD
        if ids is not None:
            chosen = and_(chosen, _o.c.id.in_(list(ids)))

        async def _replay_dead(conn: AsyncConnection) -> int:
            result = await conn.execute(
                update(_o).where(chosen).values(state=PENDING, next_attempt_at=now,
                                                retry_from=now, attempts=0))
            return int(result.rowcount)

        return await write_apart(self._writer, _replay_dead)

    async def stats(self) -> OutboxStats:
        async with ReadConnection(self._engine) as conn:
            rows = (await conn.execute(
                select(_o.c.state, func.count(), func.min(_o.c.created_at))
                .group_by(_o.c.state))).all()
        by_state = {row[0]: (int(row[1]), row[2]) for row in rows}
        pending, oldest = by_state.get(PENDING, (0, None))
        return OutboxStats(pending=pending, dead=by_state.get(DEAD, (0, None))[0],
                           oldest_pending_at=None if oldest is None else int(oldest))
