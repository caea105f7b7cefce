"""What every connection reads when it opens and writes when its user goes offline
(adapters/sql/coalesce.py), on SQLite and PostgreSQL: users connecting or leaving together
share one statement per kind, and each still gets exactly its own rows: its user, its
accepted conversations, its inbox's counts, its open calls, its `last_seen`."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from hubbub.domain.calls import Call, CallState, EndReason
from hubbub.domain.inbox import InboxEntry
from hubbub.domain.models import MessageDraft
from tests.support.stores import SqlStores

pytestmark = pytest.mark.asyncio(loop_scope="session")

_clock = itertools.count(1_960_000_000_000_000)


@contextmanager
def statements(store: SqlStores) -> Iterator[list[str]]:
    """The statements run on the store's read engine within the block."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    target = store.engine.sync_engine
    event.listen(target, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(target, "before_cursor_execute", record)


async def _people(store: SqlStores, count: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    await store.ensure_users(ids, next(_clock))
    return ids


async def test_many_users_read_together_each_get_their_own(store: SqlStores) -> None:
    people = await _people(store, 12)
    owner = people[0]
    rooms = [str(uuid.uuid4()) for _ in range(3)]
    # Room n has every n+1-th person: some in one room, some in all three.
    for n, room in enumerate(rooms):
        await store.create_conversation(room, "group", f"room {n}", owner,
                                        people[1::n + 1], next(_clock))
    accepted_by = people[1]  # accepts rooms 0 and 1 (is added to every room)
    for room in rooms[:2]:
        await store.accept_membership(room, accepted_by, next(_clock))
    banned = people[3]  # in room 0 and room 1; banned from room 1
    await store.put_member(rooms[1], banned, "banned", next(_clock))
    muted = people[2]  # in room 0 (and room 2)
    await store.update_settings(rooms[0], muted, True, None)
    for seq in range(3):  # three unread messages in room 0 for everyone but the owner
        await store.send(MessageDraft(
            id=str(uuid.uuid4()), conversation_id=rooms[0], sender_id=owner,
            sender_name="owner", content=f"hello {seq}", parent_id=None, attachments=(),
            client_message_id=None, created_at=next(_clock),
            mentions=(muted,) if seq == 0 else ()))
    stranger = str(uuid.uuid4())
    everyone = [*people, stranger]

    one_by_one = {p: (await store.inbox_entries(p), await store.accepted_conversation_ids(p))
                  for p in everyone}
    entries, accepted = await asyncio.gather(
        asyncio.gather(*(store.inbox_entries(p) for p in everyone)),
        asyncio.gather(*(store.accepted_conversation_ids(p) for p in everyone)))
    together = dict(zip(everyone, zip(entries, accepted, strict=True), strict=True))

    def by_room(found: list[InboxEntry]) -> dict[str, InboxEntry]:
        return {entry.conversation_id: entry for entry in found}

    for person in everyone:
        assert by_room(together[person][0]) == by_room(one_by_one[person][0]), person
        assert sorted(together[person][1]) == sorted(one_by_one[person][1]), person
    sizes = {room: 1 + len(people[1::n + 1]) for n, room in enumerate(rooms)}
    for person in people[1:]:
        rooms_in = {room for n, room in enumerate(rooms) if person in people[1::n + 1]}
        if person == banned:
            rooms_in.discard(rooms[1])
        found = by_room(together[person][0])
        assert set(found) == rooms_in, person
        for room in rooms_in:
            size = sizes[room] - (room == rooms[1])  # the banned one is not counted
            assert found[room].member_count == size
            assert found[room].unread_count == (3 if room == rooms[0] else 0)
            assert found[room].muted == (person == muted and room == rooms[0])
            assert found[room].mention_count == (
                1 if person == muted and room == rooms[0] else 0)
    assert sorted(together[accepted_by][1]) == sorted(rooms[:2])
    assert sorted(together[owner][1]) == sorted(rooms)  # the creator accepted each
    assert together[banned][1] == []
    assert together[stranger] == ([], [])


async def test_users_connecting_together_share_a_statement(store: SqlStores) -> None:
    people = await _people(store, 40)
    room = str(uuid.uuid4())
    await store.create_conversation(room, "group", "shared", people[0], people[1:],
                                    next(_clock))
    for reads in (store.inbox_entries, store.accepted_conversation_ids):
        with statements(store) as seen:
            await asyncio.gather(*(reads(p) for p in people))
        # The first caller's read starts alone; everyone else's shares the next one
        # (the inbox's also counts the members of what it found: a second statement).
        per_read = 2 if reads == store.inbox_entries else 1
        assert 0 < len(seen) <= 2 * per_read, (reads, seen)
    with statements(store) as seen:
        known = await asyncio.gather(*(store.upsert_user(p, None, next(_clock))
                                       for p in people))
    assert [user.id for user in known] == people
    assert 0 < len(seen) <= 2


async def test_users_going_offline_together_get_their_own_calls(store: SqlStores) -> None:
    people = await _people(store, 8)
    room = str(uuid.uuid4())
    await store.create_conversation(room, "group", "calls", people[0], people[1:],
                                    next(_clock))

    async def call(caller: str, callee: str) -> Call:
        placed = Call(id=str(uuid.uuid4()), conversation_id=room, caller_id=caller,
                      callee_id=callee, call_type="audio", state=CallState.RINGING,
                      created_at=next(_clock))
        assert await store.create_call(placed)
        return placed

    ringing = await call(people[0], people[1])  # both parties go offline together
    active = await call(people[2], people[3])
    assert await store.transition(active.id, CallState.RINGING, CallState.ACTIVE,
                                  next(_clock), connection_id="c1") is not None
    ended = await call(people[2], people[4])
    assert await store.transition(ended.id, CallState.RINGING, CallState.ENDED,
                                  next(_clock), EndReason.REJECTED) is not None
    second = await call(people[5], people[0])
    with statements(store) as seen:
        found = await asyncio.gather(*(store.open_calls_of(p) for p in people))
    assert len(seen) <= 2
    open_ids = {p: sorted(c.id for c in calls) for p, calls in zip(people, found, strict=True)}
    assert open_ids == {
        people[0]: sorted([ringing.id, second.id]), people[1]: [ringing.id],
        people[2]: [active.id], people[3]: [active.id], people[4]: [],
        people[5]: [second.id], people[6]: [], people[7]: []}
    states = {c.id: c.state for calls in found for c in calls}
    assert states[active.id] is CallState.ACTIVE


async def test_last_seen_stamps_of_users_leaving_together(store: SqlStores) -> None:
    people = await _people(store, 30)
    at = next(_clock)
    jobs_before = store.writer.jobs
    await asyncio.gather(*(store.touch_user(p, at + n) for n, p in enumerate(people)),
                         store.touch_user(people[0], at - 5))  # an older stamp loses
    for n, person in enumerate(people):
        user = await store.get_user(person)
        assert user is not None
        assert user.last_seen == at + n, person
    if not store.writer.orders_locks:  # SQLite: apart-writes are batch jobs there
        assert store.writer.jobs - jobs_before <= 2  # the first stamp, then the rest
