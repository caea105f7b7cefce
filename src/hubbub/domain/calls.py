"""The call state machine of PROTOCOL.md §3, as a table: ringing → active → ended.

Rules:

- A call is placed by a `CallOffer` with a fresh `call_id`; it starts `ringing`. The
  caller and the target (the callee) are its two parties; nobody else may act on it.
- While `ringing`, only the callee may answer or reject. The first answer wins: the
  transition to `active` is a conditional write, so a second answer finds the call active
  and is refused.
- Either party may hang up at any time before `ended`. Before the answer, the caller's
  hangup *cancels* the call and the callee's hangup *rejects* it.
- An unanswered call ends after the ring timeout (`timeout`, a missed call). A party whose
  last connection closes ends the call (`disconnected`), and so does a party who may no
  longer take part in calls in the conversation — banned, removed, or made `read_only`
  (`removed`).
- Once answered, the callee's signalling (answers, candidates, renegotiation offers) must
  come from the connection that answered: its other devices may only hang up. A device
  that lost the race to answer is refused rather than heard by the caller, and the
  caller's signalling reaches the answering connection alone (`relay_target`).
- On an `active` call either party may renegotiate: a `CallOffer` on the same `call_id`,
  answered by the other party's `CallAnswer`. Offer/answer pairing is the peers' signalling
  state, not the server's: the server relays, it does not check.
- ICE candidates flow both ways while `ringing` (the callee's may overtake its own answer)
  and `active`.
- `ended` is final. Hanging up, rejecting or disconnecting from an ended call is a no-op
  that succeeds (both sides often hang up at once); everything else on it is a conflict.

A step whose target is the current state writes nothing: the server only relays. Steps are
looked up by (state, event, party); an absent entry is refused with `Forbidden` when the
other party could take that step now, `Conflict` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hubbub.domain.errors import BadRequest, Conflict, Forbidden


class CallState(StrEnum):
    RINGING = "ringing"
    ACTIVE = "active"
    ENDED = "ended"


class CallEvent(StrEnum):
    OFFER = "offer"  # a renegotiation: the first offer creates the call instead
    ANSWER = "answer"
    CANDIDATE = "candidate"
    REJECT = "reject"
    HANGUP = "hangup"
    TIMEOUT = "timeout"
    DISCONNECT = "disconnect"
    REMOVE = "remove"  # the party lost the `send` permission in the conversation


class Party(StrEnum):
    CALLER = "caller"
    CALLEE = "callee"
    SERVER = "server"


class EndReason(StrEnum):
    """Why a call ended, as kept in its record (`calls.end_reason`)."""

    HANGUP = "hangup"  # an active call, ended by a party
    CANCELLED = "cancelled"  # the caller gave up before the answer
    REJECTED = "rejected"  # the callee declined
    TIMEOUT = "timeout"  # nobody answered: a missed call
    DISCONNECTED = "disconnected"  # a party's last connection closed
    REMOVED = "removed"  # a party was banned, removed or made read_only


@dataclass(frozen=True, slots=True)
class Step:
    """Where an event leads: the next state and, when it ends the call, why."""

    target: CallState
    end_reason: EndReason | None = None


R, A, E = CallState.RINGING, CallState.ACTIVE, CallState.ENDED
CALLER, CALLEE, SERVER = Party.CALLER, Party.CALLEE, Party.SERVER

TRANSITIONS: dict[tuple[CallState, CallEvent, Party], Step] = {
    (R, CallEvent.ANSWER, CALLEE): Step(A),
    (R, CallEvent.REJECT, CALLEE): Step(E, EndReason.REJECTED),
    (R, CallEvent.HANGUP, CALLER): Step(E, EndReason.CANCELLED),
    (R, CallEvent.HANGUP, CALLEE): Step(E, EndReason.REJECTED),
    (R, CallEvent.CANDIDATE, CALLER): Step(R),
    (R, CallEvent.CANDIDATE, CALLEE): Step(R),
    (R, CallEvent.TIMEOUT, SERVER): Step(E, EndReason.TIMEOUT),
    (R, CallEvent.DISCONNECT, CALLER): Step(E, EndReason.DISCONNECTED),
    (R, CallEvent.DISCONNECT, CALLEE): Step(E, EndReason.DISCONNECTED),
    (R, CallEvent.REMOVE, CALLER): Step(E, EndReason.REMOVED),
    (R, CallEvent.REMOVE, CALLEE): Step(E, EndReason.REMOVED),
    (A, CallEvent.OFFER, CALLER): Step(A),
    (A, CallEvent.OFFER, CALLEE): Step(A),
    (A, CallEvent.ANSWER, CALLER): Step(A),
    (A, CallEvent.ANSWER, CALLEE): Step(A),
    (A, CallEvent.CANDIDATE, CALLER): Step(A),
    (A, CallEvent.CANDIDATE, CALLEE): Step(A),
    (A, CallEvent.HANGUP, CALLER): Step(E, EndReason.HANGUP),
    (A, CallEvent.HANGUP, CALLEE): Step(E, EndReason.HANGUP),
    (A, CallEvent.DISCONNECT, CALLER): Step(E, EndReason.DISCONNECTED),
    (A, CallEvent.DISCONNECT, CALLEE): Step(E, EndReason.DISCONNECTED),
    (A, CallEvent.REMOVE, CALLER): Step(E, EndReason.REMOVED),
    (A, CallEvent.REMOVE, CALLEE): Step(E, EndReason.REMOVED),
    (E, CallEvent.HANGUP, CALLER): Step(E),
    (E, CallEvent.HANGUP, CALLEE): Step(E),
    (E, CallEvent.REJECT, CALLER): Step(E),
    (E, CallEvent.REJECT, CALLEE): Step(E),
    (E, CallEvent.DISCONNECT, CALLER): Step(E),
    (E, CallEvent.DISCONNECT, CALLEE): Step(E),
    (E, CallEvent.REMOVE, CALLER): Step(E),
    (E, CallEvent.REMOVE, CALLEE): Step(E),
}

# §3: an ICE candidate is at most 4 KiB, also when it is a JSON object.
MAX_CANDIDATE_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Call:
    """A call as kept in the `calls` table. Times are UTC microseconds."""

    id: str
    conversation_id: str
    caller_id: str
    callee_id: str
    call_type: str
    state: CallState
    created_at: int
    answered_at: int | None = None
    ended_at: int | None = None
    end_reason: EndReason | None = None
    answered_connection_id: str | None = None

    def party(self, user_id: str) -> Party | None:
        """The user's side of the call, or None for someone who is not in it."""
        if user_id == self.caller_id:
            return Party.CALLER
        if user_id == self.callee_id:
            return Party.CALLEE
        return None

    def other(self, party: Party) -> str:
        """The user id of the other side of `party`."""
        return self.callee_id if party is Party.CALLER else self.caller_id

    def relay_target(self, sender: Party) -> tuple[str, str | None]:
        """Where `sender`'s signalling goes: the other party's user id, and the one
        connection of theirs (the callee's answering connection once the call is active),
        or None for all of that user's connections."""
        if sender is Party.CALLER and self.state is CallState.ACTIVE:
            return self.callee_id, self.answered_connection_id
        return self.other(sender), None

    def ring_expired(self, now: int, ring_timeout_us: int) -> bool:
        """Whether a ringing call has outlived the ring timeout (an instance may have died
        before its timer fired; whoever touches the call next ends it)."""
        return self.state is CallState.RINGING and now >= self.created_at + ring_timeout_us


def step(state: CallState, event: CallEvent, party: Party) -> Step:
    """The step `party` takes with `event` on a call in `state`.

    Raises:
        Forbidden: only the other party may do this now (e.g. the caller answering).
        Conflict: nobody may do this in this state (e.g. answering an ended call).
    """
    found = TRANSITIONS.get((state, event, party))
    if found is not None:
        return found
    other = Party.CALLEE if party is Party.CALLER else Party.CALLER
    if party is not Party.SERVER and (state, event, other) in TRANSITIONS:
        raise Forbidden(f"only the {other.value} may {event.value} while the call is "
                        f"{state.value}")
    raise Conflict(f"cannot {event.value}: the call is {state.value}")


def check_device(call: Call, party: Party, connection_id: str) -> None:
    """Raise Conflict when the callee signals on an active call from a connection other than
    the one that answered it."""
    if (party is Party.CALLEE and call.state is CallState.ACTIVE
            and call.answered_connection_id not in (None, connection_id)):
        raise Conflict("the call was answered on another device")


def check_candidate_size(encoded_bytes: int) -> None:
    """Raise BadRequest when an encoded ICE candidate is over the §3 limit."""
    if encoded_bytes > MAX_CANDIDATE_BYTES:
        raise BadRequest(f"candidate larger than {MAX_CANDIDATE_BYTES} bytes - at `$.candidate`")
