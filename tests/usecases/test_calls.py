"""The call state machine as the service drives it (domain/calls.py, PROTOCOL.md §3):
each transition, who hears what, and the errors of the steps the table refuses."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from hubbub.adapters.sql import SqlDatabase
from hubbub.bus.topics import user_topic
from hubbub.domain.calls import CallState, EndReason
from hubbub.domain.errors import BadRequest, Conflict, Forbidden, NotFound
from hubbub.services.context import Actor
from tests.support.usecases import UseCases, open_usecases, settings

SDP = "v=0"


@dataclass
class Call:
    id: str
    room: str
    caller: Actor
    callee: Actor


async def ringing(uc: UseCases) -> Call:
    """Alice calls Bob in their direct conversation, from connection "a"."""
    alice, bob = await uc.user("alice"), await uc.user("bob")
    room = await uc.conversation(alice, "direct", [bob])
    call = Call(str(uuid.uuid4()), room, alice, bob)
    await uc.calls.offer(alice, "a", room, call.id, SDP, "audio", None)
    return call


async def active(uc: UseCases) -> Call:
    """A call Bob answered on connection "b1"."""
    call = await ringing(uc)
    await uc.calls.answer(call.callee, "b1", call.id, SDP)
    await uc.heard.take()
    return call


async def state_of(uc: UseCases, call: Call) -> tuple[CallState, EndReason | None]:
    stored = await uc.stores.calls.get_call(call.id)
    assert stored is not None
    return stored.state, stored.end_reason


async def test_an_offer_rings_the_callee(uc: UseCases) -> None:
    call = await ringing(uc)
    assert await state_of(uc, call) == (CallState.RINGING, None)
    [event] = await uc.heard.take(user_topic(call.callee.user_id))
    assert event.type == "CallOffer"
    assert event.message["from_user_id"] == call.caller.user_id
    assert await uc.heard.take(user_topic(call.caller.user_id)) == []


async def test_an_answer_makes_it_active_and_stops_the_other_devices(uc: UseCases) -> None:
    """The caller hears the answer; the callee's other devices hear `answered_elsewhere`
    (the answering connection excluded); a second device's answer is a conflict."""
    call = await ringing(uc)
    await uc.heard.take()
    await uc.calls.answer(call.callee, "b1", call.id, SDP)
    assert await state_of(uc, call) == (CallState.ACTIVE, None)
    [answer] = await uc.heard.take(user_topic(call.caller.user_id))
    assert answer.type == "CallAnswer"
    [elsewhere] = await uc.heard.take(user_topic(call.callee.user_id))
    assert (elsewhere.type, elsewhere.message["reason"]) == ("CallHangup", "answered_elsewhere")
    assert elsewhere.envelope.exclude_connection == "b1"
    with pytest.raises(Conflict):
        await uc.calls.answer(call.callee, "b2", call.id, SDP)


async def test_the_caller_cannot_answer_and_strangers_cannot_act(uc: UseCases) -> None:
    call = await ringing(uc)
    stranger = await uc.user()
    with pytest.raises(Forbidden):
        await uc.calls.answer(call.caller, "a", call.id, SDP)
    with pytest.raises(Forbidden):
        await uc.calls.hangup(stranger, "s", call.id, None)
    with pytest.raises(NotFound):
        await uc.calls.answer(call.callee, "b1", str(uuid.uuid4()), SDP)
    assert await state_of(uc, call) == (CallState.RINGING, None)


@pytest.mark.parametrize(("who", "reason", "heard_by", "heard"), [
    ("caller", EndReason.CANCELLED, "callee", "CallHangup"),
    ("callee", EndReason.REJECTED, "caller", "CallHangup"),
])
async def test_hanging_up_a_ringing_call(uc: UseCases, who: str, reason: EndReason,
                                         heard_by: str, heard: str) -> None:
    """Before the answer the caller's hangup cancels, the callee's rejects."""
    call = await ringing(uc)
    await uc.heard.take()
    actor = call.caller if who == "caller" else call.callee
    other = call.callee if heard_by == "callee" else call.caller
    await uc.calls.hangup(actor, "x", call.id, None)
    assert await state_of(uc, call) == (CallState.ENDED, reason)
    assert heard in await uc.heard.types(user_topic(other.user_id))


async def test_a_reject_ends_the_call_and_tells_the_caller(uc: UseCases) -> None:
    call = await ringing(uc)
    await uc.heard.take()
    await uc.calls.reject(call.callee, "b1", call.id, "busy")
    assert await state_of(uc, call) == (CallState.ENDED, EndReason.REJECTED)
    [event] = await uc.heard.take(user_topic(call.caller.user_id))
    assert (event.type, event.message["reason"]) == ("CallReject", "busy")


async def test_only_the_callee_rejects_and_only_while_ringing(uc: UseCases) -> None:
    call = await ringing(uc)
    with pytest.raises(Forbidden):
        await uc.calls.reject(call.caller, "a", call.id, None)
    answered = await active(uc)
    with pytest.raises(Conflict):
        await uc.calls.reject(answered.callee, "b1", answered.id, None)
    assert await state_of(uc, answered) == (CallState.ACTIVE, None)


async def test_an_ended_call_refuses_signalling_but_hangups_are_no_ops(uc: UseCases) -> None:
    call = await active(uc)
    await uc.calls.hangup(call.caller, "a", call.id, None)
    assert await state_of(uc, call) == (CallState.ENDED, EndReason.HANGUP)
    await uc.heard.take()
    await uc.calls.hangup(call.callee, "b1", call.id, None)
    await uc.calls.reject(call.callee, "b1", call.id, None)
    assert await uc.heard.take() == []
    with pytest.raises(Conflict):
        await uc.calls.candidate(call.caller, "a", call.id, {"candidate": "c"})
    with pytest.raises(Conflict):
        await uc.calls.answer(call.callee, "b1", call.id, SDP)


async def test_after_the_answer_only_the_answering_device_signals(uc: UseCases) -> None:
    """The callee's other device may hang up but not send candidates; the caller's reach
    the answering connection alone."""
    call = await active(uc)
    with pytest.raises(Conflict):
        await uc.calls.candidate(call.callee, "b2", call.id, {"candidate": "c"})
    await uc.calls.candidate(call.caller, "a", call.id, {"candidate": "c"})
    [relay] = await uc.heard.take(user_topic(call.callee.user_id))
    assert relay.type == "ICECandidate"
    assert relay.envelope.only_connection == "b1"


async def test_offers_that_cannot_ring(uc: UseCases) -> None:
    """No target in a group, oneself as target, a target who may not send, and a taken
    call_id are refused; nothing rings."""
    owner, reader = await uc.user(), await uc.user()
    group = await uc.conversation(owner, "group", [reader])
    await uc.conversations.put_member(owner, group, reader.user_id, "read_only")
    await uc.heard.take()
    with pytest.raises(BadRequest, match="target_user_id"):
        await uc.calls.offer(owner, "o", group, str(uuid.uuid4()), SDP, "audio", None)
    with pytest.raises(BadRequest, match="yourself"):
        await uc.calls.offer(owner, "o", group, str(uuid.uuid4()), SDP, "audio",
                             owner.user_id)
    with pytest.raises(Forbidden):
        await uc.calls.offer(owner, "o", group, str(uuid.uuid4()), SDP, "audio",
                             reader.user_id)
    call = await ringing(uc)
    with pytest.raises(Conflict):
        await uc.calls.offer(owner, "o", group, call.id, SDP, "audio", reader.user_id)
    assert await uc.heard.types(user_topic(reader.user_id)) == []


async def test_losing_send_ends_the_call_as_removed(uc: UseCases) -> None:
    """A party made `read_only` ends its open calls in the conversation: the control event
    reaches the call service, which tells the other party."""
    owner, carol = await uc.user(), await uc.user()
    group = await uc.conversation(owner, "group", [carol])
    call_id = str(uuid.uuid4())
    await uc.calls.offer(owner, "o", group, call_id, SDP, "video", carol.user_id)
    await uc.heard.take()
    await uc.conversations.put_member(owner, group, carol.user_id, "read_only")
    event = await uc.heard.next(user_topic(owner.user_id), "CallHangup")
    assert event.message["reason"] == "removed"
    stored = await uc.stores.calls.get_call(call_id)
    assert stored is not None
    assert (stored.state, stored.end_reason) == (CallState.ENDED, EndReason.REMOVED)


async def test_a_party_going_offline_ends_the_call(uc: UseCases) -> None:
    call = await active(uc)
    await uc.calls.user_offline(call.callee.user_id)
    assert await state_of(uc, call) == (CallState.ENDED, EndReason.DISCONNECTED)
    [event] = await uc.heard.take(user_topic(call.caller.user_id))
    assert (event.type, event.message["reason"]) == ("CallHangup", "disconnected")


async def test_an_unanswered_call_times_out(usecase_database: SqlDatabase) -> None:
    """After the ring timeout both parties hear `timeout`; answering then is a conflict."""
    uc = await open_usecases(usecase_database, settings(call_ring_timeout=0.2))
    try:
        call = await ringing(uc)
        event = await uc.heard.next(user_topic(call.caller.user_id), "CallHangup")
        assert event.message["reason"] == "timeout"
        assert await state_of(uc, call) == (CallState.ENDED, EndReason.TIMEOUT)
        with pytest.raises(Conflict):
            await uc.calls.answer(call.callee, "b1", call.id, SDP)
    finally:
        await uc.close()
