"""The call state machine (domain/calls.py): the table's rules, checked as data."""

from __future__ import annotations

import pytest

from hubbub.domain.calls import (
    MAX_CANDIDATE_BYTES,
    TRANSITIONS,
    Call,
    CallEvent,
    CallState,
    EndReason,
    Party,
    Step,
    check_candidate_size,
    check_device,
    step,
)
from hubbub.domain.errors import BadRequest, Conflict, Forbidden

RINGING, ACTIVE, ENDED = CallState.RINGING, CallState.ACTIVE, CallState.ENDED
CALLER, CALLEE, SERVER = Party.CALLER, Party.CALLEE, Party.SERVER


def a_call(state: CallState = RINGING, answered_by: str | None = None) -> Call:
    return Call(id="c", conversation_id="v", caller_id="alice", callee_id="bob",
                call_type="video", state=state, created_at=1_000_000,
                answered_connection_id=answered_by)


def test_the_callee_answers_a_ringing_call() -> None:
    """Answering moves ringing to active, with no end reason."""
    assert step(RINGING, CallEvent.ANSWER, CALLEE) == Step(ACTIVE)


def test_the_caller_answering_is_forbidden() -> None:
    """An answer is the callee's step: the caller's is refused as Forbidden."""
    with pytest.raises(Forbidden):
        step(RINGING, CallEvent.ANSWER, CALLER)


def test_the_caller_rejecting_is_forbidden() -> None:
    """A reject is the callee's step too."""
    with pytest.raises(Forbidden):
        step(RINGING, CallEvent.REJECT, CALLER)


@pytest.mark.parametrize(("state", "party", "reason"), [
    (RINGING, CALLER, EndReason.CANCELLED),
    (RINGING, CALLEE, EndReason.REJECTED),
    (ACTIVE, CALLER, EndReason.HANGUP),
    (ACTIVE, CALLEE, EndReason.HANGUP),
])
def test_hangup_reasons(state: CallState, party: Party, reason: EndReason) -> None:
    """A hangup before the answer cancels (caller) or rejects (callee); after it, it is a
    plain hangup."""
    assert step(state, CallEvent.HANGUP, party) == Step(ENDED, reason)


def test_only_a_ringing_call_times_out() -> None:
    """The server's timeout ends a ringing call as missed, and nothing else."""
    assert step(RINGING, CallEvent.TIMEOUT, SERVER) == Step(ENDED, EndReason.TIMEOUT)
    with pytest.raises(Conflict):
        step(ACTIVE, CallEvent.TIMEOUT, SERVER)


def test_renegotiation_needs_an_active_call() -> None:
    """A second offer on a ringing call is a Conflict; on an active one it is a no-write step
    for either party."""
    with pytest.raises(Conflict):
        step(RINGING, CallEvent.OFFER, CALLER)
    assert step(ACTIVE, CallEvent.OFFER, CALLER) == Step(ACTIVE)
    assert step(ACTIVE, CallEvent.OFFER, CALLEE) == Step(ACTIVE)


def test_ended_is_final() -> None:
    """No entry of the table leaves `ended`, and none of its steps has an end reason."""
    leaving = [key for key, found in TRANSITIONS.items()
               if key[0] is ENDED and (found.target is not ENDED or found.end_reason)]
    assert leaving == []


@pytest.mark.parametrize("event", [CallEvent.HANGUP, CallEvent.REJECT, CallEvent.DISCONNECT,
                                   CallEvent.REMOVE])
def test_ending_an_ended_call_again_is_a_no_op(event: CallEvent) -> None:
    """Hangup, reject, disconnect and removal on an ended call change nothing."""
    assert step(ENDED, event, CALLEE) == Step(ENDED)


@pytest.mark.parametrize("event", [CallEvent.ANSWER, CallEvent.CANDIDATE, CallEvent.OFFER])
def test_signalling_on_an_ended_call_is_a_conflict(event: CallEvent) -> None:
    """Answers, candidates and offers on an ended call are refused as Conflict."""
    with pytest.raises(Conflict):
        step(ENDED, event, CALLER)


def test_every_step_that_ends_a_call_says_why() -> None:
    """A transition into `ended` from another state always carries an end reason."""
    silent = [key for key, found in TRANSITIONS.items()
              if key[0] is not ENDED and found.target is ENDED and found.end_reason is None]
    assert silent == []


def test_the_answering_device_keeps_signalling() -> None:
    """The connection that answered may go on; the callee's other ones may not."""
    call = a_call(ACTIVE, answered_by="phone")
    check_device(call, CALLEE, "phone")
    with pytest.raises(Conflict):
        check_device(call, CALLEE, "laptop")


@pytest.mark.parametrize("state", [RINGING, ACTIVE])
@pytest.mark.parametrize("party", [CALLER, CALLEE])
def test_a_party_removed_from_the_conversation_ends_the_call(state: CallState,
                                                             party: Party) -> None:
    """Losing `send` in the conversation ends a ringing or active call as `removed`."""
    assert step(state, CallEvent.REMOVE, party) == Step(ENDED, EndReason.REMOVED)


def test_the_callers_relays_go_to_the_answering_device() -> None:
    """Once answered, relays to the callee go to the answering connection alone; to the
    caller, and while ringing, to every connection."""
    call = a_call(ACTIVE, answered_by="phone")
    assert call.relay_target(CALLER) == ("bob", "phone")
    assert call.relay_target(CALLEE) == ("alice", None)
    assert a_call().relay_target(CALLER) == ("bob", None)


def test_the_caller_is_not_bound_to_a_device() -> None:
    """The device rule is the callee's only (the caller never had several devices ring)."""
    check_device(a_call(ACTIVE, answered_by="phone"), CALLER, "anything")


def test_ring_expiry_counts_from_creation() -> None:
    """A ringing call expires at `created_at + timeout`, an active one never."""
    assert not a_call().ring_expired(1_999_999, 1_000_000)
    assert a_call().ring_expired(2_000_000, 1_000_000)
    assert not a_call(ACTIVE).ring_expired(9_000_000, 1_000_000)


def test_parties_and_their_counterparts() -> None:
    """Each user of a call is a party, facing the other one; anyone else is none."""
    call = a_call()
    assert (call.party("alice"), call.party("bob"), call.party("carol")) == (CALLER, CALLEE,
                                                                              None)
    assert (call.other(CALLER), call.other(CALLEE)) == ("bob", "alice")


def test_candidate_size_limit() -> None:
    """4 KiB passes; a byte more is a BadRequest naming the field."""
    check_candidate_size(MAX_CANDIDATE_BYTES)
    with pytest.raises(BadRequest, match=r"\$\.candidate"):
        check_candidate_size(MAX_CANDIDATE_BYTES + 1)
