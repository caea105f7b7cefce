"""The outbox (storage/outbox.py, adapters/sql/outbox.py) on SQLite and PostgreSQL alike:
events commit and roll back with their change, claims hand out each conversation's oldest
pending event alone, leases keep two dispatchers off one event, and dead events wait for a
replay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hubbub.adapters.sql.copy import copy_database
from hubbub.adapters.sql.outbox import SqlOutboxStore
from hubbub.adapters.sql.schema import webhook_outbox
from hubbub.services.webhook_events import MessageCreated, member_put
from hubbub.storage.outbox import OutboxEvent, OutboxRow, emitting
from tests.contract.test_send_batch import channel, draft, stored, user
from tests.support.services import create_postgres_database, drop_postgres_database
from tests.support.stores import SqlStores, open_stores

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOW = 1_900_000_000_000_000
LEASE = 30_000_000


@pytest_asyncio.fixture(loop_scope="session")
async def outbox(store: SqlStores) -> AsyncIterator[SqlOutboxStore]:
    """The store's outbox, emptied before and after (the backend's database is shared,
    and these events' leases and retries are set in 2030)."""
    async with store.engine.begin() as conn:
        await conn.execute(delete(webhook_outbox))
    yield store.database.outbox
    async with store.engine.begin() as conn:
        await conn.execute(delete(webhook_outbox))


async def rows(store: SqlStores) -> list[tuple[str, str, int]]:
    async with store.engine.connect() as conn:
        found = await conn.execute(select(webhook_outbox.c.type,
                                          webhook_outbox.c.conversation_id,
                                          webhook_outbox.c.version)
                                   .order_by(webhook_outbox.c.seq))
        return [(r.type, r.conversation_id, r.version) for r in found]


async def send_with_events(store: SqlStores, room: str, sender: str, n: int) -> list[int]:
    """`n` sends sharing a batch, each emitting `message.created`; their versions."""
    with emitting(MessageCreated()):
        outcomes = await asyncio.gather(*(store.send(draft(room, sender)) for _ in range(n)))
    return [stored(o).message.version for o in outcomes]


async def test_events_are_stored_with_their_change(store: SqlStores,
                                                   outbox: SqlOutboxStore) -> None:
    """Sends of one batch store one event each, carrying their versions; a membership,
    which takes no version, carries the conversation's at commit."""
    sender = await user(store)
    room = await channel(store, sender)
    versions = await send_with_events(store, room, sender, 3)
    other = await user(store)
    with emitting(member_put(None)):
        await store.put_member(room, other, "member", NOW)
    assert await rows(store) == [("message.created", room, v) for v in versions] + [
        ("member.added", room, versions[-1])]


async def test_a_change_that_fails_or_rolls_back_stores_no_event(
        store: SqlStores, outbox: SqlOutboxStore) -> None:
    """A send refused inside the transaction (unknown conversation) emits nothing; a job
    whose transaction fails after emitting leaves no event, and its batch neighbours keep
    exactly one each."""
    sender = await user(store)
    room = await channel(store, sender)

    def always(_: object) -> list[OutboxEvent]:
        return [OutboxEvent("test.event", room, 1, b"{}")]

    async def _emit_then_break(conn: AsyncConnection) -> None:
        raise RuntimeError("after the change, before the commit")

    # Tasks take the builder in force where they are created, and share one batch.
    with emitting(MessageCreated()):
        missing = asyncio.ensure_future(
            store.send(draft("00000000-0000-4000-8000-000000000000", sender)))
        good = asyncio.ensure_future(store.send(draft(room, sender)))
    with emitting(always):
        broken = asyncio.ensure_future(store.writer.run(_emit_then_break))
    outcomes = await asyncio.gather(missing, good, broken, return_exceptions=True)
    assert isinstance(outcomes[0], Exception)
    assert isinstance(outcomes[2], RuntimeError)
    assert await rows(store) == [("message.created", room, stored(outcomes[1]).message.version)]


async def claim(outbox: SqlOutboxStore, owner: str, now: int = NOW,
                limit: int = 10) -> list[OutboxRow]:
    return await outbox.claim(owner, now, now + LEASE, limit)


async def test_claims_hand_out_each_conversation_in_order(
        store: SqlStores, outbox: SqlOutboxStore) -> None:
    """Only the oldest pending event of each conversation is claimed; while leased, nobody
    gets the next one; once delivered, it is."""
    sender = await user(store)
    first, second = await channel(store, sender), await channel(store, sender)
    v1 = await send_with_events(store, first, sender, 3)
    v2 = await send_with_events(store, second, sender, 2)
    heads = await claim(outbox, "a")
    assert [(r.conversation_id, r.version) for r in heads] == [(first, v1[0]), (second, v2[0])]
    assert await claim(outbox, "b") == []
    assert await outbox.delivered("b", [heads[0].seq]) == 0  # not b's lease
    assert await outbox.delivered("a", [heads[0].seq]) == 1
    [after] = await claim(outbox, "b")
    assert (after.conversation_id, after.version) == (first, v1[1])
    assert after.id != heads[0].id
    # The leases ran out: another dispatcher takes both over, and a can no longer
    # complete its own.
    taken = await claim(outbox, "c", now=NOW + LEASE + 1)
    assert [(r.conversation_id, r.version) for r in taken] == [(first, v1[1]),
                                                               (second, v2[0])]
    assert await outbox.delivered("a", [heads[1].seq]) == 0


async def test_failures_wait_their_backoff_and_dead_events_wait_for_a_replay(
        store: SqlStores, outbox: SqlOutboxStore) -> None:
    """A failed event is due again only at its next attempt, and blocks its conversation
    meanwhile; a dead one is listed, blocks nothing, and a replay puts it first again."""
    sender = await user(store)
    room = await channel(store, sender)
    versions = await send_with_events(store, room, sender, 2)
    [head] = await claim(outbox, "a")
    assert await outbox.retry("a", head.seq, NOW + 5_000_000, "HTTP 500", dead=False)
    assert await claim(outbox, "a", now=NOW + 1) == []
    [again] = await claim(outbox, "a", now=NOW + 5_000_000)
    assert (again.id, again.attempts) == (head.id, 1)
    assert await outbox.retry("a", again.seq, NOW, "timeout", dead=True)
    [dead] = await outbox.dead_letters(10)
    assert (dead.id, dead.last_error, dead.attempts) == (head.id, "timeout", 2)
    [following] = await claim(outbox, "a", now=NOW + 6_000_000)
    assert following.version == versions[1]
    stats = await outbox.stats()
    assert (stats.pending, stats.dead) == (1, 1)
    assert await outbox.replay([head.id], NOW + 7_000_000) == 1
    assert await outbox.dead_letters(10) == []
    assert await outbox.delivered("a", [following.seq]) == 1
    [replayed] = await claim(outbox, "a", now=NOW + 7_000_000)
    assert (replayed.id, replayed.attempts, replayed.retry_from) == (head.id, 0,
                                                                     NOW + 7_000_000)


async def test_two_instances_claiming_at_once_never_share_an_event(
        two_instances: tuple[SqlStores, SqlStores]) -> None:
    """PostgreSQL, two writers: claims racing each other (SKIP LOCKED) hand every event
    to exactly one dispatcher, one per conversation at a time, and lose none."""
    first, second = two_instances
    sender = await user(first)
    rooms = [await channel(first, sender) for _ in range(8)]
    for room in rooms:
        await send_with_events(first, room, sender, 5)
    outboxes = [first.database.outbox, second.database.outbox]
    delivered: list[str] = []
    for _ in range(20):
        claimed = await asyncio.gather(*(claim(o, f"owner-{i}", limit=3)
                                         for i, o in enumerate(outboxes * 2)))
        ids = [r.id for batch in claimed for r in batch]
        assert len(ids) == len(set(ids)), "an event claimed twice"
        conversations = [r.conversation_id for batch in claimed for r in batch]
        assert len(conversations) == len(set(conversations))
        for i, batch in enumerate(claimed):
            assert await outboxes[i % 2].delivered(f"owner-{i}", [r.seq for r in batch]) \
                == len(batch)
        delivered += ids
        if not ids:
            break
    assert len(delivered) == len(set(delivered)) == 40


async def test_a_run_leases_the_events_after_each_head(store: SqlStores,
                                                       outbox: SqlOutboxStore) -> None:
    """`run`: a conversation's first pending events together, for one dispatcher; the
    unsent rest given back is claimable again, the head first."""
    sender = await user(store)
    first, second = await channel(store, sender), await channel(store, sender)
    v1 = await send_with_events(store, first, sender, 4)
    v2 = await send_with_events(store, second, sender, 2)
    claimed = await outbox.claim("a", NOW, NOW + LEASE, 10, run=3)
    assert sorted((r.conversation_id, r.version) for r in claimed) == sorted(
        [(first, v) for v in v1[:3]] + [(second, v) for v in v2])
    assert await claim(outbox, "b") == []
    ours = [r for r in claimed if r.conversation_id == first]
    await outbox.release("a", [r.seq for r in ours[1:]])
    assert await outbox.delivered("a", [ours[0].seq]) == 1
    again = await outbox.claim("b", NOW, NOW + LEASE, 10, run=5)
    assert [(r.conversation_id, r.version) for r in again] == [(first, v) for v in v1[1:]]


async def test_a_claim_first_deletes_what_its_owner_delivered(
        store: SqlStores, outbox: SqlOutboxStore) -> None:
    """`claim(delivered=...)`: the owner's delivered events go in the claim's write, so the
    next events of their conversations are the new heads; another owner's lease is kept
    (its events are not deleted), and runs read each conversation's events in order."""
    sender = await user(store)
    first, second = await channel(store, sender), await channel(store, sender)
    v1 = await send_with_events(store, first, sender, 5)
    v2 = await send_with_events(store, second, sender, 3)
    ours = await outbox.claim("a", NOW, NOW + LEASE, 1, run=2)
    assert [(r.conversation_id, r.version) for r in ours] == [(first, v) for v in v1[:2]]
    theirs = await outbox.claim("b", NOW, NOW + LEASE, 10, run=1)
    assert [(r.conversation_id, r.version) for r in theirs] == [(second, v2[0])]
    # "b" names a's events and its own as delivered: only its own go.
    again = await outbox.claim("b", NOW, NOW + LEASE, 10, run=3,
                               delivered=[r.seq for r in ours + theirs])
    assert [(r.conversation_id, r.version) for r in again] == [(second, v) for v in v2[1:]]
    after = await outbox.claim("a", NOW, NOW + LEASE, 10, run=3,
                               delivered=[r.seq for r in ours])
    assert [(r.conversation_id, r.version) for r in after] == [(first, v) for v in v1[2:]]
    assert [version for _, _, version in await rows(store)] == v1[2:] + v2[1:]


async def test_a_copied_outbox_goes_on_numbering_after_its_rows(tmp_path: Path) -> None:
    """`hubbub copy-db` from SQLite to PostgreSQL carries pending events over with their
    `seq`, and the target's next events are numbered after them (not a duplicate key)."""
    source = await open_stores(f"sqlite:///{tmp_path / 'source.db'}")
    sender = await user(source)
    room = await channel(source, sender)
    await send_with_events(source, room, sender, 3)
    await source.close()
    database = await create_postgres_database()
    try:
        await copy_database(f"sqlite:///{tmp_path / 'source.db'}", database.url)
        target = await open_stores(database.url, migrate=False)
        try:
            versions = await send_with_events(target, room, sender, 2)
            assert versions == [4, 5]
            assert [v for _, _, v in await rows(target)] == [1, 2, 3, 4, 5]
        finally:
            await target.close()
    finally:
        await drop_postgres_database(database)
