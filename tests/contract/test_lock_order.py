"""Lock order on PostgreSQL (adapters/sql/writer.py): two instances' batches that write the same
rows in opposite orders never deadlock — a deadlock would abort a batch after
`deadlock_timeout` (1 s) and retry its jobs one by one."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from hubbub.domain.calls import Call, CallState, EndReason
from hubbub.domain.models import MessageDraft
from hubbub.storage import CallStore
from tests.support.stores import SqlStores

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROUNDS = 12
_clock = itertools.count(1_900_000_000_000_000)


def new_id() -> str:
    return str(uuid.uuid4())


def draft(conversation_id: str, sender: str) -> MessageDraft:
    return MessageDraft(
        id=new_id(), conversation_id=conversation_id, sender_id=sender, sender_name="s",
        content="hello", parent_id=None, attachments=(), client_message_id=None,
        created_at=next(_clock),
    )


Writes = Callable[[SqlStores, "Scene"], list[Awaitable[object]]]


@dataclass
class Scene:
    alice: str
    bob: str
    room: str
    mark: str  # a message of `room` nobody has read or received yet
    call: str  # a call in `room`, ringing


def calls_of(store: SqlStores) -> CallStore:
    return store.stores.calls


SCENARIOS: dict[str, Writes] = {
    "read mark and send": lambda store, s: [
        store.mark_read(s.room, s.bob, s.mark, next(_clock)),
        store.send(draft(s.room, s.alice)),
    ],
    "role change and send": lambda store, s: [
        store.put_member(s.room, s.bob, "member", next(_clock)),
        store.send(draft(s.room, s.alice)),
    ],
    "two receipts": lambda store, s: [
        store.mark_delivered(s.room, s.bob, s.mark, next(_clock)),
        store.mark_read(s.room, s.alice, s.mark, next(_clock)),
    ],
    "call end and read mark": lambda store, s: [
        calls_of(store).transition(s.call, CallState.RINGING, CallState.ENDED, next(_clock),
                                   EndReason.CANCELLED),
        store.mark_read(s.room, s.bob, s.mark, next(_clock)),
    ],
    "two users": lambda store, s: [
        store.touch_user(s.alice, next(_clock)),
        store.upsert_user(s.bob, f"bob-{next(_clock)}", next(_clock)),
    ],
}


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_opposite_orders_of_shared_rows_never_deadlock(
        two_instances: tuple[SqlStores, SqlStores], scenario: str) -> None:
    """Each round, both instances queue in one tick (one batch each) the same writes in
    opposite orders. No batch may abort, and every write lands."""
    one, two = two_instances
    writes = SCENARIOS[scenario]
    alice, bob, room = new_id(), new_id(), new_id()
    for user_id, name in ((alice, "alice"), (bob, "bob")):
        await one.upsert_user(user_id, name, next(_clock))
    await one.create_conversation(room, "group", "room", alice, [bob], next(_clock))
    for _ in range(ROUNDS):
        mark = (await one.send(draft(room, alice))).message.id
        call = Call(new_id(), room, alice, bob, "audio", CallState.RINGING, next(_clock))
        assert await calls_of(one).create_call(call)
        scene = Scene(alice, bob, room, mark, call.id)
        batches = one.writer.batches, two.writer.batches
        outcomes = await asyncio.gather(*writes(one, scene), *writes(two, scene)[::-1],
                                        return_exceptions=True)
        assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
        # One batch each (user and call rows are written apart from batches on PostgreSQL).
        expected = 0 if scenario == "two users" else 1
        assert (one.writer.batches - batches[0], two.writer.batches - batches[1]) == (
            expected, expected)
    assert (one.writer.aborted, two.writer.aborted) == (0, 0)
