"""The checks `message.undelivered` owes (storage/undelivered.py, adapters/sql/undelivered.py)
on SQLite and PostgreSQL alike: sends note them in their transaction, claims lease them
to one sweeper, and a finish stores the events as it removes the note, or moves it past
what was checked when more messages committed meanwhile — on PostgreSQL even while such
a send is still running on another instance."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import delete, select, text

from hubbub.adapters.sql.schema import undelivered_checks, webhook_outbox
from hubbub.adapters.sql.undelivered import SqlUndeliveredStore
from hubbub.storage.outbox import OutboxEvent
from hubbub.storage.undelivered import OwedCheck
from tests.contract.test_send_batch import channel, draft, new_id, stored, user
from tests.support.stores import SqlStores

pytestmark = pytest.mark.asyncio(loop_scope="session")

GRACE = 5_000_000
LEASE = 30_000_000
FAR = 2_000_000_000_000_000  # after every due time of these tests (their clock is 2030)


async def empty(store: SqlStores) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(delete(undelivered_checks))
        await conn.execute(delete(webhook_outbox))


@pytest_asyncio.fixture(loop_scope="session")
async def checks(store: SqlStores) -> AsyncIterator[SqlUndeliveredStore]:
    """The store's owed checks, noted from now on, the tables emptied before and after
    (the backend's database is shared)."""
    await empty(store)
    store.database.undelivered.owe_checks(GRACE)
    yield store.database.undelivered
    await empty(store)


async def owed(store: SqlStores) -> list[tuple[str, int, int, str | None]]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(undelivered_checks)
                                  .order_by(undelivered_checks.c.due_at))
        return [(r.conversation_id, r.from_seq, r.due_at, r.lease_owner) for r in rows]


async def undelivered_events(store: SqlStores) -> list[tuple[str, int]]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(webhook_outbox.c.conversation_id,
                                         webhook_outbox.c.version)
                                  .where(webhook_outbox.c.type == "message.undelivered")
                                  .order_by(webhook_outbox.c.seq))
        return [(r.conversation_id, r.version) for r in rows]


def event(room: str, version: int) -> OutboxEvent:
    return OutboxEvent("message.undelivered", room, version, b"{}")


async def test_sends_note_each_conversation_once_from_its_first_new_message(
        store: SqlStores, checks: SqlUndeliveredStore) -> None:
    """Sends sharing a batch note one check per conversation, from its first message, due
    a grace after its last; later sends leave the note as it is; a retried `client_message_id`
    notes nothing."""
    sender = await user(store)
    a, b = await channel(store, sender), await channel(store, sender)
    drafts = [draft(a, sender, client_id="k1"), draft(b, sender), draft(a, sender)]
    batches = store.writer.batches
    sent = [stored(o) for o in await asyncio.gather(*(store.send(d) for d in drafts))]
    assert store.writer.batches == batches + 1
    # Due a grace after the batch's latest message of the conversation.
    expected = sorted([(a, sent[0].message.seq, drafts[2].created_at + GRACE, None),
                       (b, sent[1].message.seq, drafts[1].created_at + GRACE, None)],
                      key=lambda row: row[2])
    assert await owed(store) == expected
    stored(await store.send(draft(b, sender)))
    assert await owed(store) == expected
    await empty(store)
    retry = stored(await store.send(draft(a, sender, client_id="k1")))
    assert not retry.created
    assert await owed(store) == []


async def test_nothing_is_noted_until_checks_are_owed(store: SqlStores) -> None:
    """Webhooks off (no sweeper asked for checks): a send writes no note."""
    await empty(store)
    sender = await user(store)
    room = await channel(store, sender)
    stored(await store.send(draft(room, sender)))
    assert await owed(store) == []


async def test_a_claim_leases_due_checks_to_one_sweeper(
        store: SqlStores, checks: SqlUndeliveredStore) -> None:
    """Not before it is due; once claimed, nobody else gets it until the lease ran out;
    the sweeper whose lease ran out can no longer finish it, and stores nothing."""
    sender = await user(store)
    room = await channel(store, sender)
    first = draft(room, sender)
    message = stored(await store.send(first)).message
    due = first.created_at + GRACE
    assert await checks.claim("a", due - 1, due - 1 + LEASE, 10) == []
    assert await checks.claim("a", due, due + LEASE, 10) == [OwedCheck(room, message.seq, due)]
    assert await checks.claim("b", due + 1, due + 1 + LEASE, 10) == []
    assert await checks.claim("b", due + LEASE + 1, due + 2 * LEASE, 10) == [
        OwedCheck(room, message.seq, due)]
    assert not await checks.finish("a", room, message.seq, [event(room, message.seq)], GRACE)
    assert await undelivered_events(store) == []
    assert await checks.finish("b", room, message.seq, [event(room, message.seq)], GRACE)
    assert await undelivered_events(store) == [(room, message.seq)]
    assert await owed(store) == []


async def test_a_finish_moves_the_check_past_what_it_read(
        store: SqlStores, checks: SqlUndeliveredStore) -> None:
    """A message that committed after the sweeper read the conversation's unchecked ones
    keeps the check, moved to it (due a grace after it, no longer leased); once nothing
    follows, the finish removes it, and the next send notes a new one."""
    sender = await user(store)
    room = await channel(store, sender)
    sent = [stored(await store.send(draft(room, sender))).message for _ in range(2)]
    [claimed] = await checks.claim("a", FAR, FAR + LEASE, 10)
    read = await checks.unchecked(room, claimed.from_seq, 100)
    assert [(m.id, m.seq, m.sender_id) for m in read] == [
        (m.id, m.seq, sender) for m in sent]
    late = draft(room, sender)
    later = stored(await store.send(late)).message
    assert await checks.finish("a", room, read[-1].seq,
                               [event(room, m.seq) for m in read], GRACE)
    assert await owed(store) == [(room, later.seq, late.created_at + GRACE, None)]
    [again] = await checks.claim("b", FAR, FAR + LEASE, 10)
    assert [m.id for m in await checks.unchecked(room, again.from_seq, 100)] == [later.id]
    assert await checks.finish("b", room, later.seq, [event(room, later.seq)], GRACE)
    assert await owed(store) == []
    assert await undelivered_events(store) == [(room, m.seq) for m in (*sent, later)]
    newest = draft(room, sender)
    newest_seq = stored(await store.send(newest)).message.seq
    assert await owed(store) == [(room, newest_seq, newest.created_at + GRACE, None)]


async def test_a_read_stops_at_its_limit_and_the_check_goes_on_from_there(
        store: SqlStores, checks: SqlUndeliveredStore) -> None:
    sender = await user(store)
    room = await channel(store, sender)
    sent = [stored(await store.send(draft(room, sender))).message for _ in range(3)]
    [claimed] = await checks.claim("a", FAR, FAR + LEASE, 10)
    read = await checks.unchecked(room, claimed.from_seq, 2)
    assert [m.seq for m in read] == [m.seq for m in sent[:2]]
    assert await checks.finish("a", room, read[-1].seq, [], GRACE)
    [(_, from_seq, _, lease_owner)] = await owed(store)
    assert (from_seq, lease_owner) == (sent[2].seq, None)


async def test_sweepers_claiming_at_once_never_share_a_check(
        two_instances: tuple[SqlStores, SqlStores]) -> None:
    """PostgreSQL, two writers: claims racing each other (SKIP LOCKED) hand every check
    to exactly one sweeper."""
    first, second = two_instances
    for instance in two_instances:
        instance.database.undelivered.owe_checks(GRACE)
    sender = await user(first)
    rooms = [await channel(first, sender) for _ in range(12)]
    for room in rooms:
        stored(await first.send(draft(room, sender)))
    stores = [first.database.undelivered, second.database.undelivered] * 2
    claimed = await asyncio.gather(*(s.claim(f"owner-{i}", FAR, FAR + LEASE, 4)
                                     for i, s in enumerate(stores)))
    taken = [c.conversation_id for batch in claimed for c in batch]
    assert len(taken) == len(set(taken))
    assert sum(1 for batch in claimed if batch) >= 2
    rest = await stores[0].claim("late", FAR, FAR + LEASE, 100)
    assert sorted(taken + [c.conversation_id for c in rest]) == sorted(rooms)


async def test_a_finish_waits_for_a_send_still_running_on_another_instance(
        two_instances: tuple[SqlStores, SqlStores]) -> None:
    """PostgreSQL: a send in flight on another instance (its conversation row locked,
    its message and its note, which finds the existing one and writes nothing, not yet
    committed) makes the finish wait; once the send commits, the finish sees its message
    and moves the check to it instead of removing it, so that message is checked too."""
    first, second = two_instances
    first.database.undelivered.owe_checks(GRACE)
    checks = first.database.undelivered
    sender = await user(first)
    room = await channel(first, sender)
    message = stored(await first.send(draft(room, sender))).message
    [claimed] = [c for c in await checks.claim("a", FAR, FAR + LEASE, 100)
                 if c.conversation_id == room]
    [read] = await checks.unchecked(room, claimed.from_seq, 100)
    late_id, late_at = new_id(), FAR - 1
    async with second.engine.connect() as conn:
        transaction = await conn.begin()
        version = (await conn.execute(text(
            "UPDATE conversations SET version = version + 1 WHERE id = :id "
            "RETURNING version"), {"id": room})).scalar_one()
        await conn.execute(text(
            "INSERT INTO messages (id, conversation_id, seq, version, sender_id, content, "
            "created_at) VALUES (:id, :room, :v, :v, :sender, 'late', :at)"),
            {"id": late_id, "room": room, "v": version, "sender": sender, "at": late_at})
        await conn.execute(text(
            "INSERT INTO undelivered_checks (conversation_id, from_seq, due_at) "
            "VALUES (:room, :v, :due) ON CONFLICT (conversation_id) DO NOTHING"),
            {"room": room, "v": version, "due": late_at + GRACE})
        finishing = asyncio.ensure_future(
            checks.finish("a", room, read.seq, [event(room, message.seq)], GRACE))
        await asyncio.sleep(0.5)
        assert not finishing.done()
        await transaction.commit()
    assert await finishing
    assert await owed(first) == [(room, version, late_at + GRACE, None)]
