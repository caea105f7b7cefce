"""`UndeliveredStore` on SQL: the checks `message.undelivered` owes (storage/undelivered.py).

The send batch writes a conversation's row with its version bump (send_statements.py,
`INSERT … ON CONFLICT DO NOTHING`, so an existing row keeps its earlier `from_seq`).
Sweepers lease due rows like dispatchers lease events (outbox.py): on PostgreSQL `FOR
UPDATE SKIP LOCKED` while the lease is written, so sweepers on several instances skip each
other's rows; SQLite's one writer runs claims one at a time.

A send and a finish racing on PostgreSQL: a send whose messages the sweeper did not read
(committed after its read, or still running) finds the row there and writes nothing, so
the finish must not delete the row under it. So the finish first locks the conversation's
row, as every send batch does before writing its messages (the version bump): a send still
running has committed by then, and one that has not begun bumping waits until the finish
has committed. Under that lock the finish looks for a message after the ones it checked:
if there is one the row moves to it, else it is deleted, and a later send's insert then
finds no row and writes a new one. The finish takes the conversation's lock before the
check's row, like the sends, and a claim waits for no lock (SKIP LOCKED), so no two of
them can wait on each other. The claim and the finish are conditional on the lease: a
sweeper whose lease ran out stores nothing, and the one that took over runs the check.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hubbub.adapters.sql.dialect import lock_conversations
from hubbub.adapters.sql.outbox import EventInserter, micros
from hubbub.adapters.sql.schema import messages, undelivered_checks
from hubbub.adapters.sql.sends import SendBatch
from hubbub.adapters.sql.shared import ReadConnection, write_apart
from hubbub.adapters.sql.writer import Writer
from hubbub.storage.outbox import OutboxEvent
from hubbub.storage.undelivered import OwedCheck, Unchecked

_c = undelivered_checks
_m = messages
_mentions = msgspec.json.Decoder(tuple[str, ...])


class SqlUndeliveredStore:
    """The owed checks of one database, on its engine and Writer."""

    def __init__(self, engine: AsyncEngine, writer: Writer, insert: EventInserter,
                 sends: SendBatch) -> None:
        self._engine = engine
        self._writer = writer
        self._insert = insert
        self._sends = sends

    def owe_checks(self, grace: int) -> None:
        self._sends.owe_checks_after = grace

    async def claim(self, owner: str, now: int, lease_until: int,
                    limit: int) -> list[OwedCheck]:
        due = (_c.c.due_at <= now, or_(_c.c.lease_until.is_(None), _c.c.lease_until < now))
        # Most sweeps find nothing due: a read, not a write (on SQLite, a Writer batch).
        async with ReadConnection(self._engine) as conn:
            if (await conn.execute(select(_c.c.conversation_id).where(*due).limit(1))
                    ).first() is None:
                return []
        chosen = (select(_c.c.conversation_id).where(*due).order_by(_c.c.due_at)
                  .limit(limit).with_for_update(skip_locked=True))

        async def _claim_checks(conn: AsyncConnection) -> list[OwedCheck]:
            ids = [row.conversation_id for row in await conn.execute(chosen)]
            if not ids:
                return []
            rows = await conn.execute(
                update(_c).where(_c.c.conversation_id.in_(ids))
                .values(lease_owner=owner, lease_until=lease_until)
                .returning(_c.c.conversation_id, _c.c.from_seq, _c.c.due_at))
            return sorted((OwedCheck(r.conversation_id, r.from_seq, r.due_at) for r in rows),
                          key=lambda c: c.due_at)

        return await write_apart(self._writer, _claim_checks)

    async def unchecked(self, conversation_id: str, from_seq: int,
                        limit: int) -> list[Unchecked]:
        async with ReadConnection(self._engine) as conn:
            rows = await conn.execute(
                select(_m.c.id, _m.c.seq, _m.c.sender_id, _m.c.mentions)
                .where(_m.c.conversation_id == conversation_id, _m.c.seq >= from_seq)
                .order_by(_m.c.seq).limit(limit))
            return [Unchecked(r.id, r.seq, r.sender_id,
                              _mentions.decode(r.mentions) if r.mentions else ())
                    for r in rows]

    async def finish(self, owner: str, conversation_id: str, through_seq: int,
                     events: Sequence[OutboxEvent], grace: int) -> bool:
        ours = (_c.c.conversation_id == conversation_id, _c.c.lease_owner == owner)

        async def _finish_check(conn: AsyncConnection) -> bool:
            await lock_conversations(conn, [conversation_id])  # see the docstring
            after = (await conn.execute(
                select(_m.c.seq, _m.c.created_at)
                .where(_m.c.conversation_id == conversation_id, _m.c.seq > through_seq)
                .order_by(_m.c.seq).limit(1))).first()
            if after is None:
                result = await conn.execute(delete(_c).where(*ours))
            else:
                result = await conn.execute(update(_c).where(*ours).values(
                    from_seq=after.seq, due_at=after.created_at + grace,
                    lease_owner=None, lease_until=None))
            if result.rowcount != 1:
                return False
            if events:
                await self._insert(conn, events, micros())
            return True

        done = await write_apart(self._writer, _finish_check)
        if done and events and self._writer.on_events is not None:
            self._writer.on_events()
        return done
