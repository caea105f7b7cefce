"""The `CallStore` seam (storage/calls.py), run against SQLite and PostgreSQL alike:
conditional transitions, and the lookups of the call relay."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from dataclasses import replace

import pytest

from hubbub.domain.calls import Call, CallState, EndReason
from hubbub.storage import CallStore
from tests.support.stores import SqlStores

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Far from the other suites' clocks, and increasing, so that time-ordered queries are exact.
_clock = itertools.count(2_100_000_000_000_000, 1000)
RINGING, ACTIVE, ENDED = CallState.RINGING, CallState.ACTIVE, CallState.ENDED


def now() -> int:
    return next(_clock)


def new_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def calls(store: SqlStores) -> CallStore:
    return store.stores.calls


def a_call(caller: str | None = None, callee: str | None = None,
           conversation_id: str | None = None, created_at: int | None = None) -> Call:
    return Call(id=new_id(), conversation_id=conversation_id or new_id(),
                caller_id=caller or new_id(), callee_id=callee or new_id(), call_type="video",
                state=RINGING, created_at=now() if created_at is None else created_at)


async def placed(calls: CallStore, caller: str | None = None, callee: str | None = None,
                 conversation_id: str | None = None, created_at: int | None = None) -> Call:
    """A ringing call, stored."""
    call = a_call(caller, callee, conversation_id, created_at)
    assert await calls.create_call(call)
    return call


async def test_a_call_is_stored_as_placed(calls: CallStore) -> None:
    """`get_call` returns the ringing call as it was created."""
    call = await placed(calls)
    assert await calls.get_call(call.id) == call


async def test_a_taken_id_is_refused(calls: CallStore) -> None:
    """A second call with the same id is not stored and the first one is unchanged."""
    call = await placed(calls)
    again = replace(call, conversation_id=new_id(), call_type="audio", created_at=now())
    assert not await calls.create_call(again)
    assert await calls.get_call(call.id) == call


async def test_answering_stamps_the_time_and_the_connection(calls: CallStore) -> None:
    """ringing → active records `answered_at` and the answering connection."""
    call = await placed(calls)
    at = now()
    answered = await calls.transition(call.id, RINGING, ACTIVE, at, connection_id="conn-1")
    assert answered is not None
    assert (answered.state, answered.answered_at, answered.answered_connection_id) == (
        ACTIVE, at, "conn-1")
    assert await calls.get_call(call.id) == answered


async def test_ending_stamps_the_time_and_the_reason(calls: CallStore) -> None:
    """→ ended records `ended_at` and the end reason."""
    call = await placed(calls)
    at = now()
    ended = await calls.transition(call.id, RINGING, ENDED, at, EndReason.TIMEOUT)
    assert ended is not None
    assert (ended.state, ended.ended_at, ended.end_reason, ended.answered_at) == (
        ENDED, at, EndReason.TIMEOUT, None)


async def test_a_transition_from_the_wrong_state_changes_nothing(calls: CallStore) -> None:
    """A transition expecting a state the call is not in returns None and writes nothing."""
    call = await placed(calls)
    assert await calls.transition(call.id, ACTIVE, ENDED, now(), EndReason.HANGUP) is None
    assert await calls.get_call(call.id) == call


async def test_of_concurrent_transitions_exactly_one_wins(calls: CallStore) -> None:
    """Ten answers at once: one moves the call, nine find it moved."""
    call = await placed(calls)
    results = await asyncio.gather(*(
        calls.transition(call.id, RINGING, ACTIVE, now(), connection_id=f"conn-{i}")
        for i in range(10)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert await calls.get_call(call.id) == winners[0]


async def test_open_calls_of_a_user(calls: CallStore) -> None:
    """The ringing and active calls the user is a party of, on either side; ended ones and
    other users' calls are left out."""
    user = new_id()
    as_caller = await placed(calls, caller=user)
    as_callee = await placed(calls, callee=user)
    await calls.transition(as_callee.id, RINGING, ACTIVE, now())
    ended = await placed(calls, caller=user)
    await calls.transition(ended.id, RINGING, ENDED, now(), EndReason.CANCELLED)
    await placed(calls)
    found = await calls.open_calls_of(user)
    assert sorted(c.id for c in found) == sorted([as_caller.id, as_callee.id])


async def test_ringing_before_finds_stale_ringing_calls_oldest_first(
        calls: CallStore) -> None:
    """Only ringing calls created before the cutoff, oldest first, at most `limit`."""
    old = [await placed(calls) for _ in range(3)]
    answered = await placed(calls)
    await calls.transition(answered.id, RINGING, ACTIVE, now())
    cutoff = now()
    await placed(calls)  # too young
    found = await calls.ringing_before(cutoff, 1000)
    ids = [c.id for c in found]
    assert [c.id for c in old] == [i for i in ids if i in {c.id for c in old}]
    assert answered.id not in ids
    assert all(c.created_at < cutoff and c.state is RINGING for c in found)
    assert len(await calls.ringing_before(cutoff, 2)) == 2


async def test_open_calls_pages_without_skipping_or_repeating(calls: CallStore) -> None:
    """Paging with the (created_at, id) of the last call visits each open call once, calls
    created in the same microsecond included."""
    same_time = now()
    mine = [await placed(calls, created_at=same_time) for _ in range(3)]
    mine += [await placed(calls) for _ in range(2)]
    seen: list[str] = []
    after: tuple[int, str] | None = None
    while page := await calls.open_calls(after, 2):
        seen += [c.id for c in page]
        after = (page[-1].created_at, page[-1].id)
    assert len(seen) == len(set(seen))
    assert {c.id for c in mine} <= set(seen)


async def test_list_calls_shows_a_users_calls_newest_first(calls: CallStore) -> None:
    """A conversation's calls the user took part in, newest first, before a time, limited."""
    conversation_id, alice, bob, carol = new_id(), new_id(), new_id(), new_id()
    first = await placed(calls, caller=alice, callee=bob, conversation_id=conversation_id)
    second = await placed(calls, caller=bob, callee=alice, conversation_id=conversation_id)
    await placed(calls, caller=bob, callee=carol, conversation_id=conversation_id)
    await placed(calls, caller=alice, callee=bob)  # another conversation
    listed = await calls.list_calls(conversation_id, alice, None, 10)
    assert [c.id for c in listed] == [second.id, first.id]
    older = await calls.list_calls(conversation_id, alice, second.created_at, 10)
    assert [c.id for c in older] == [first.id]
    assert [c.id for c in await calls.list_calls(conversation_id, alice, None, 1)] == [
        second.id]
