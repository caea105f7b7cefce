"""Calls: the signalling relay and the call state machine of PROTOCOL.md §3 over real sockets.

Every rule of the relay has a test: what each relay carries and to whom, participants
only, membership, the first answer winning, the ring timeout, a disconnect ending the call,
renegotiation, reused call ids, and the history record a call leaves.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from hubbub.domain.calls import Call as CallRecord
from hubbub.domain.calls import CallState
from hubbub.services.context import now_micros
from tests.conftest import Backend, StartServer
from tests.support.client import ChatClient
from tests.support.flows import MISSING, TIMEOUT, assert_error, set_role
from tests.support.server import RunningServer, User
from tests.support.stores import another_instance

pytestmark = pytest.mark.asyncio(loop_scope="session")

_MEDIA = "s=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
OFFER_SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n" + _MEDIA
ANSWER_SDP = "v=0\r\no=- 2 1 IN IP4 127.0.0.1\r\n" + _MEDIA
CANDIDATE = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
             "sdpMid": "0", "sdpMLineIndex": 0}
# Short enough to keep the suite fast; the assertions wait far longer than this.
QUICK_RING = 0.5


@dataclass
class Call:
    """Two users of a direct conversation, a connection each, and a call between them."""

    conversation_id: str
    call_id: str
    alice: User
    bob: User
    a: ChatClient
    b: ChatClient


def new_call_id() -> str:
    return str(uuid.uuid4())


async def confirmed(client: ChatClient, type_: str, **fields: Any) -> dict[str, Any]:
    """Send `type_` and assert that its direct response is `ActionConfirmed`."""
    reply = await client.request(type_, timeout=TIMEOUT, **fields)
    assert reply == {"type": "ActionConfirmed", "action": type_,
                     "request_id": reply.get("request_id")}, reply
    return reply


async def refused(client: ChatClient, type_: str, code: str, **fields: Any) -> dict[str, Any]:
    """Send `type_` and assert that its direct response is an `Error` with `code`."""
    reply = await client.request(type_, timeout=TIMEOUT, **fields)
    assert_error(reply, code, request_id=reply.get("request_id"))
    return reply


async def direct_pair(server: RunningServer) -> tuple[str, User, User]:
    """A direct conversation of alice and bob."""
    alice, bob = server.user("alice"), server.user("bob")
    conversation = await server.create_conversation(alice, kind="direct", members=[bob])
    return conversation["id"], alice, bob


async def ringing(server: RunningServer, call_type: str = "video") -> Call:
    """A call from alice to bob that rings on bob's connection."""
    conversation_id, alice, bob = await direct_pair(server)
    a, b = await server.connect(alice), await server.connect(bob)
    call_id = new_call_id()
    await confirmed(a, "CallOffer", conversation_id=conversation_id, call_id=call_id,
                    sdp=OFFER_SDP, call_type=call_type)
    await b.expect("CallOffer", timeout=TIMEOUT, call_id=call_id)
    return Call(conversation_id, call_id, alice, bob, a, b)


async def offered_to_two_devices(server: RunningServer) -> tuple[Call, ChatClient]:
    """A video call from alice offered to two connections of bob's: `b` (the phone) and the
    laptop returned beside it. Neither has read its `CallOffer` yet."""
    conversation_id, alice, bob = await direct_pair(server)
    a = await server.connect(alice)
    phone, laptop = await server.connect(bob), await server.connect(bob)
    call_id = new_call_id()
    await confirmed(a, "CallOffer", conversation_id=conversation_id, call_id=call_id,
                    sdp=OFFER_SDP, call_type="video")
    return Call(conversation_id, call_id, alice, bob, a, phone), laptop


async def active(server: RunningServer) -> Call:
    """A call from alice to bob that bob has answered."""
    call = await ringing(server)
    await confirmed(call.b, "CallAnswer", call_id=call.call_id, sdp=ANSWER_SDP)
    await call.a.expect("CallAnswer", timeout=TIMEOUT, call_id=call.call_id)
    return call


async def call_history(server: RunningServer, user: User,
                       conversation_id: str) -> list[dict[str, Any]]:
    """`GET …/calls` as `user`."""
    async with server.http(user) as http:
        response = await http.get(f"/api/v1/conversations/{conversation_id}/calls")
    assert response.status_code == 200, response.text
    calls: list[dict[str, Any]] = response.json()["calls"]
    return calls


async def group_of_three(server: RunningServer) -> tuple[str, User, User, User]:
    """A group of alice (owner), bob and carol."""
    alice, bob, carol = server.user("alice"), server.user("bob"), server.user("carol")
    group = await server.create_conversation(alice, kind="group", name="trio",
                                             members=[bob, carol])
    return group["id"], alice, bob, carol


# -- relay contents ------------------------------------------------------------------------


async def test_offer_rings_every_connection_of_the_target(server: RunningServer) -> None:
    """A `CallOffer` in a direct conversation reaches each of the other member's connections,
    with the caller and the implied target named."""
    call, laptop = await offered_to_two_devices(server)
    expected = {"type": "CallOffer", "call_id": call.call_id,
                "conversation_id": call.conversation_id, "sdp": OFFER_SDP,
                "call_type": "video", "from_user_id": call.alice.id,
                "target_user_id": call.bob.id}
    assert await call.b.expect("CallOffer", timeout=TIMEOUT) == expected
    assert await laptop.expect("CallOffer", timeout=TIMEOUT) == expected


async def test_offer_in_a_group_reaches_the_named_target_only(server: RunningServer) -> None:
    """In a group the offer goes to `target_user_id`, not to the other members."""
    group, alice, bob, carol = await group_of_three(server)
    a = await server.connect(alice)
    b, c = await server.connect(bob), await server.connect(carol)
    call_id = new_call_id()
    await confirmed(a, "CallOffer", conversation_id=group, call_id=call_id, sdp=OFFER_SDP,
                    call_type="audio", target_user_id=carol.id)
    offer = await c.expect("CallOffer", timeout=TIMEOUT, call_id=call_id)
    assert offer["target_user_id"] == carol.id
    await b.expect_none("CallOffer")
    await a.expect_none("CallOffer", within=0.0)


async def test_answer_is_relayed_to_the_caller(server: RunningServer) -> None:
    """`CallAnswer` reaches the caller with the sdp, the conversation and the answerer."""
    call = await ringing(server)
    await confirmed(call.b, "CallAnswer", call_id=call.call_id, sdp=ANSWER_SDP)
    relayed = await call.a.expect("CallAnswer", timeout=TIMEOUT)
    assert relayed == {"type": "CallAnswer", "call_id": call.call_id,
                       "conversation_id": call.conversation_id, "sdp": ANSWER_SDP,
                       "from_user_id": call.bob.id}


async def test_candidates_are_relayed_to_the_other_party(server: RunningServer) -> None:
    """ICE candidates, objects or strings, go from each party to the other one unchanged."""
    call = await active(server)
    await confirmed(call.a, "ICECandidate", call_id=call.call_id, candidate=CANDIDATE)
    await confirmed(call.b, "ICECandidate", call_id=call.call_id, candidate="candidate:2 1 udp")
    at_bob = await call.b.expect("ICECandidate", timeout=TIMEOUT)
    at_alice = await call.a.expect("ICECandidate", timeout=TIMEOUT)
    assert at_bob == {"type": "ICECandidate", "call_id": call.call_id,
                      "conversation_id": call.conversation_id, "candidate": CANDIDATE,
                      "from_user_id": call.alice.id}
    assert at_alice["candidate"] == "candidate:2 1 udp"
    assert at_alice["from_user_id"] == call.bob.id


async def test_caller_candidates_reach_the_callee_while_ringing(server: RunningServer) -> None:
    """Candidates trickled before the answer reach the ringing callee."""
    call = await ringing(server)
    await confirmed(call.a, "ICECandidate", call_id=call.call_id, candidate=CANDIDATE)
    relayed = await call.b.expect("ICECandidate", timeout=TIMEOUT)
    assert relayed["candidate"] == CANDIDATE


async def test_oversized_candidate_is_a_bad_request(server: RunningServer) -> None:
    """A candidate object over 4 KiB once encoded is refused naming the field."""
    call = await active(server)
    reply = await call.a.request("ICECandidate", call_id=call.call_id,
                                 candidate={"candidate": "x" * 5000}, timeout=TIMEOUT)
    assert_error(reply, "BAD_REQUEST", field="$.candidate", request_id=reply["request_id"])
    await call.b.expect_none("ICECandidate")


async def test_hangup_is_relayed_to_the_other_party(server: RunningServer) -> None:
    """`CallHangup` reaches the other party with the reason given."""
    call = await active(server)
    await confirmed(call.a, "CallHangup", call_id=call.call_id, reason="bye")
    relayed = await call.b.expect("CallHangup", timeout=TIMEOUT)
    assert relayed == {"type": "CallHangup", "call_id": call.call_id,
                       "conversation_id": call.conversation_id,
                       "from_user_id": call.alice.id, "reason": "bye"}
    await call.a.expect_none("CallHangup")


async def test_caller_hangup_stops_the_ringing(server: RunningServer) -> None:
    """A caller that gives up before the answer stops every device of the callee ringing."""
    call = await ringing(server)
    laptop = await server.connect(call.bob)
    await confirmed(call.a, "CallHangup", call_id=call.call_id)
    assert (await call.b.expect("CallHangup", timeout=TIMEOUT))["reason"] is None
    await call.b.expect_none("CallHangup", within=0.0)
    # The laptop connected after the offer went out, yet it hears the end of the call.
    assert (await laptop.expect("CallHangup", timeout=TIMEOUT))["call_id"] == call.call_id


async def test_hanging_up_an_ended_call_is_confirmed_quietly(server: RunningServer) -> None:
    """A second hangup (both hung up at once) is confirmed and relays nothing."""
    call = await active(server)
    await confirmed(call.a, "CallHangup", call_id=call.call_id)
    await call.b.expect("CallHangup", timeout=TIMEOUT)
    await confirmed(call.b, "CallHangup", call_id=call.call_id)
    await call.a.expect_none("CallHangup")


# -- reject --------------------------------------------------------------------------------


async def test_reject_is_relayed_to_the_caller(server: RunningServer) -> None:
    """`CallReject` reaches the caller with the callee's reason."""
    call = await ringing(server)
    await confirmed(call.b, "CallReject", call_id=call.call_id, reason="busy")
    relayed = await call.a.expect("CallReject", timeout=TIMEOUT)
    assert relayed == {"type": "CallReject", "call_id": call.call_id,
                       "conversation_id": call.conversation_id,
                       "from_user_id": call.bob.id, "reason": "busy"}


async def test_reject_stops_the_callees_other_devices(server: RunningServer) -> None:
    """The callee's other connections hear `CallHangup{reason:"rejected_elsewhere"}`."""
    call = await ringing(server)
    laptop = await server.connect(call.bob)
    await confirmed(call.b, "CallReject", call_id=call.call_id)
    relayed = await laptop.expect("CallHangup", timeout=TIMEOUT)
    assert relayed["reason"] == "rejected_elsewhere"
    assert relayed["from_user_id"] == call.bob.id
    await call.b.expect_none("CallHangup")


async def test_a_rejected_call_cannot_be_answered(server: RunningServer) -> None:
    """After a reject the call has ended: an answer is a `CONFLICT`."""
    call = await ringing(server)
    await confirmed(call.b, "CallReject", call_id=call.call_id)
    await refused(call.b, "CallAnswer", "CONFLICT", call_id=call.call_id, sdp=ANSWER_SDP)
    await call.a.expect_none("CallAnswer")


async def test_an_answered_call_cannot_be_rejected(server: RunningServer) -> None:
    """Once active the call is hung up, not rejected: a reject is a `CONFLICT`."""
    call = await active(server)
    await refused(call.b, "CallReject", "CONFLICT", call_id=call.call_id)
    await call.a.expect_none("CallReject")


async def test_the_caller_cannot_reject_its_own_call(server: RunningServer) -> None:
    """Only the callee rejects: the caller's reject is `FORBIDDEN`."""
    call = await ringing(server)
    await refused(call.a, "CallReject", "FORBIDDEN", call_id=call.call_id)


# -- answered elsewhere --------------------------------------------------------------------


async def test_first_answer_wins_and_other_devices_hear_answered_elsewhere(
        server: RunningServer) -> None:
    """The callee's other connections get `CallHangup{reason:"answered_elsewhere"}`, the
    answering one does not."""
    call = await ringing(server)
    laptop = await server.connect(call.bob)
    await confirmed(call.b, "CallAnswer", call_id=call.call_id, sdp=ANSWER_SDP)
    relayed = await laptop.expect("CallHangup", timeout=TIMEOUT)
    assert relayed == {"type": "CallHangup", "call_id": call.call_id,
                       "conversation_id": call.conversation_id,
                       "from_user_id": call.bob.id, "reason": "answered_elsewhere"}
    await call.b.expect_none("CallHangup")
    await call.a.expect_none("CallHangup", within=0.0)


async def test_a_second_answer_is_a_conflict(server: RunningServer) -> None:
    """Two devices answering at once: exactly one wins; the other gets `CONFLICT`."""
    call = await ringing(server)
    laptop = await server.connect(call.bob)
    replies = await asyncio.gather(
        call.b.request("CallAnswer", call_id=call.call_id, sdp=ANSWER_SDP, timeout=TIMEOUT),
        laptop.request("CallAnswer", call_id=call.call_id, sdp=ANSWER_SDP, timeout=TIMEOUT),
    )
    assert sorted(r["type"] for r in replies) == ["ActionConfirmed", "Error"], replies
    assert [r["code"] for r in replies if r["type"] == "Error"] == ["CONFLICT"]
    await call.a.expect("CallAnswer", timeout=TIMEOUT)
    await call.a.expect_none("CallAnswer")


@pytest.mark.parametrize(("type_", "fields"), [
    ("CallAnswer", {"sdp": ANSWER_SDP}),
    ("ICECandidate", {"candidate": CANDIDATE}),
    ("CallOffer", {"sdp": OFFER_SDP, "call_type": "video"}),
])
async def test_only_the_answering_device_signals(server: RunningServer, type_: str,
                                                 fields: dict[str, Any]) -> None:
    """Once answered, the callee's other connections are refused with `CONFLICT` and the
    caller hears nothing from them."""
    call = await ringing(server)
    laptop = await server.connect(call.bob)
    await confirmed(call.b, "CallAnswer", call_id=call.call_id, sdp=ANSWER_SDP)
    await call.a.expect("CallAnswer", timeout=TIMEOUT)
    if type_ == "CallOffer":
        fields = {**fields, "conversation_id": call.conversation_id}
    await refused(laptop, type_, "CONFLICT", call_id=call.call_id, **fields)
    await call.a.expect_none(type_)


async def test_another_device_of_the_callee_may_hang_up(server: RunningServer) -> None:
    """Hanging up is not bound to the answering device: any of the callee's connections may
    end the call."""
    call = await active(server)
    laptop = await server.connect(call.bob)
    await confirmed(laptop, "CallHangup", call_id=call.call_id)
    assert (await call.a.expect("CallHangup", timeout=TIMEOUT))["from_user_id"] == call.bob.id


async def test_the_caller_cannot_answer_its_own_call(server: RunningServer) -> None:
    """Only the callee answers a ringing call: the caller's answer is `FORBIDDEN`."""
    call = await ringing(server)
    await refused(call.a, "CallAnswer", "FORBIDDEN", call_id=call.call_id, sdp=ANSWER_SDP)


# -- participants and members --------------------------------------------------------------


@pytest.mark.parametrize(("type_", "fields"), [
    ("CallAnswer", {"sdp": ANSWER_SDP}),
    ("ICECandidate", {"candidate": CANDIDATE}),
    ("CallHangup", {}),
    ("CallReject", {}),
])
async def test_only_participants_may_act_on_a_call(server: RunningServer, type_: str,
                                                   fields: dict[str, Any]) -> None:
    """A member of the conversation who is not in the call gets `FORBIDDEN`, and nothing is
    relayed."""
    group, alice, bob, carol = await group_of_three(server)
    a, b, c = await server.connect(alice), await server.connect(bob), await server.connect(carol)
    call_id = new_call_id()
    await confirmed(a, "CallOffer", conversation_id=group, call_id=call_id, sdp=OFFER_SDP,
                    call_type="audio", target_user_id=bob.id)
    await b.expect("CallOffer", timeout=TIMEOUT)
    await refused(c, type_, "FORBIDDEN", call_id=call_id, **fields)
    await a.expect_none(type_)
    await b.expect_none(type_, within=0.0)


@pytest.mark.parametrize(("type_", "fields"), [
    ("CallAnswer", {"sdp": ANSWER_SDP}),
    ("ICECandidate", {"candidate": CANDIDATE}),
    ("CallHangup", {}),
    ("CallReject", {}),
])
async def test_unknown_call_is_not_found(server: RunningServer, type_: str,
                                         fields: dict[str, Any]) -> None:
    """An action on a call_id nobody used is `NOT_FOUND` naming the field."""
    client = await server.connect(server.user())
    reply = await client.request(type_, call_id=MISSING, timeout=TIMEOUT, **fields)
    assert_error(reply, "NOT_FOUND", field="$.call_id", request_id=reply["request_id"])


async def test_the_target_must_be_a_member(server: RunningServer) -> None:
    """Calling someone outside the conversation is `FORBIDDEN` and rings nothing."""
    group, alice, _, _ = await group_of_three(server)
    stranger = server.user("stranger")
    a, s = await server.connect(alice), await server.connect(stranger)
    await refused(a, "CallOffer", "FORBIDDEN", conversation_id=group, call_id=new_call_id(),
                  sdp=OFFER_SDP, call_type="audio", target_user_id=stranger.id)
    await s.expect_none("CallOffer")


async def test_the_caller_must_be_a_member(server: RunningServer) -> None:
    """A non-member cannot place a call in a conversation, even to one of its members."""
    group, _, bob, _ = await group_of_three(server)
    stranger = server.user("stranger")
    s, b = await server.connect(stranger), await server.connect(bob)
    await refused(s, "CallOffer", "FORBIDDEN", conversation_id=group, call_id=new_call_id(),
                  sdp=OFFER_SDP, call_type="audio", target_user_id=bob.id)
    await b.expect_none("CallOffer")


async def test_a_read_only_member_cannot_take_calls(server: RunningServer) -> None:
    """Calls need the `send` permission (§5) on both sides: a read-only target is refused."""
    group, alice, bob, _ = await group_of_three(server)
    async with server.http(alice) as http:
        response = await http.put(f"/api/v1/conversations/{group}/members/{bob.id}",
                                  json={"role": "read_only"})
    assert response.status_code == 200, response.text
    a = await server.connect(alice)
    await refused(a, "CallOffer", "FORBIDDEN", conversation_id=group, call_id=new_call_id(),
                  sdp=OFFER_SDP, call_type="audio", target_user_id=bob.id)


async def test_a_group_call_needs_a_target(server: RunningServer) -> None:
    """Outside a direct conversation the target cannot be implied: `BAD_REQUEST`."""
    group, alice, _, _ = await group_of_three(server)
    a = await server.connect(alice)
    reply = await a.request("CallOffer", conversation_id=group, call_id=new_call_id(),
                            sdp=OFFER_SDP, call_type="audio", timeout=TIMEOUT)
    assert_error(reply, "BAD_REQUEST", field="$.target_user_id",
                 request_id=reply["request_id"])


async def test_calling_oneself_is_a_bad_request(server: RunningServer) -> None:
    """The target cannot be the caller."""
    conversation_id, alice, _ = await direct_pair(server)
    a = await server.connect(alice)
    reply = await a.request("CallOffer", conversation_id=conversation_id,
                            call_id=new_call_id(), sdp=OFFER_SDP, call_type="audio",
                            target_user_id=alice.id, timeout=TIMEOUT)
    assert_error(reply, "BAD_REQUEST", field="$.target_user_id",
                 request_id=reply["request_id"])


async def test_offer_in_an_unknown_conversation_is_not_found(server: RunningServer) -> None:
    """A call in a conversation that does not exist is `NOT_FOUND`."""
    client = await server.connect(server.user())
    reply = await client.request("CallOffer", conversation_id=MISSING, call_id=new_call_id(),
                                 sdp=OFFER_SDP, call_type="audio", timeout=TIMEOUT)
    assert_error(reply, "NOT_FOUND", field="$.conversation_id",
                 request_id=reply["request_id"])


# -- timeout -------------------------------------------------------------------------------


async def test_unanswered_call_times_out_for_both(start_server: StartServer) -> None:
    """After `call_ring_timeout` both parties get `CallHangup{reason:"timeout"}` from the
    server (no `from_user_id`)."""
    async with start_server(call_ring_timeout=QUICK_RING, rate_limits=False) as server:
        call = await ringing(server)
        expected = {"type": "CallHangup", "call_id": call.call_id,
                    "conversation_id": call.conversation_id, "from_user_id": None,
                    "reason": "timeout"}
        assert await call.a.expect("CallHangup", timeout=TIMEOUT) == expected
        assert await call.b.expect("CallHangup", timeout=TIMEOUT) == expected


async def test_a_timed_out_call_cannot_be_answered(start_server: StartServer) -> None:
    """An answer after the ring timeout is a `CONFLICT`."""
    async with start_server(call_ring_timeout=QUICK_RING, rate_limits=False) as server:
        call = await ringing(server)
        await call.b.expect("CallHangup", timeout=TIMEOUT, reason="timeout")
        await refused(call.b, "CallAnswer", "CONFLICT", call_id=call.call_id, sdp=ANSWER_SDP)


async def test_an_answered_call_does_not_time_out(start_server: StartServer) -> None:
    """Answering in time stops the ring timer: the call outlives the timeout."""
    async with start_server(call_ring_timeout=QUICK_RING, rate_limits=False) as server:
        call = await ringing(server)
        await confirmed(call.b, "CallAnswer", call_id=call.call_id, sdp=ANSWER_SDP)
        await call.a.expect_none("CallHangup", hold=QUICK_RING * 3)
        await call.b.expect_none("CallHangup", within=0.0)
        await confirmed(call.a, "ICECandidate", call_id=call.call_id, candidate=CANDIDATE)


async def test_a_missed_call_is_in_the_history(start_server: StartServer) -> None:
    """The call history shows an unanswered call as ended by `timeout`, never answered."""
    async with start_server(call_ring_timeout=QUICK_RING, rate_limits=False) as server:
        call = await ringing(server, call_type="audio")
        await call.a.expect("CallHangup", timeout=TIMEOUT, reason="timeout")
        [record] = await call_history(server, call.bob, call.conversation_id)
    assert record["id"] == call.call_id
    assert record["caller_id"] == call.alice.id
    assert record["callee_id"] == call.bob.id
    assert record["call_type"] == "audio"
    assert record["state"] == "ended"
    assert record["end_reason"] == "timeout"
    assert record["answered_at"] is None
    assert record["ended_at"] >= record["created_at"]


def left_ringing(conversation_id: str, caller: User, callee: User,
                 created_at: int) -> CallRecord:
    """A call as an instance that stopped while it rang left it."""
    return CallRecord(id=new_call_id(), conversation_id=conversation_id, caller_id=caller.id,
                      callee_id=callee.id, call_type="audio", state=CallState.RINGING,
                      created_at=created_at)


async def test_a_ringing_call_whose_timer_was_lost_still_times_out(
        start_server: StartServer, backend: Backend) -> None:
    """A call that rings with no instance keeping its timer (that one stopped) is ended by
    the sweep of another, and both parties hear `timeout`."""
    async with start_server(call_ring_timeout=QUICK_RING, rate_limits=False) as server:
        conversation_id, alice, bob = await direct_pair(server)
        a, b = await server.connect(alice), await server.connect(bob)
        orphan = left_ringing(conversation_id, alice, bob, now_micros())
        async with another_instance(backend) as calls:
            assert await calls.create_call(orphan)
        for client in (a, b):
            hangup = await client.expect("CallHangup", timeout=TIMEOUT, call_id=orphan.id)
            assert hangup["reason"] == "timeout"


async def test_calls_left_open_end_when_an_instance_starts(start_server: StartServer,
                                                          backend: Backend) -> None:
    """At start an instance ends the open calls nobody can finish: one that rang past the
    timeout (`timeout`), and an active one whose parties are connected nowhere
    (`disconnected`)."""
    async with start_server(rate_limits=False) as first:
        conversation_id, alice, bob = await direct_pair(first)
    missed = left_ringing(conversation_id, alice, bob, now_micros() - 3_600_000_000)
    talking = left_ringing(conversation_id, alice, bob, now_micros())
    async with another_instance(backend) as calls:
        assert await calls.create_call(missed)
        assert await calls.create_call(talking)
        assert await calls.transition(talking.id, CallState.RINGING, CallState.ACTIVE,
                                      now_micros(), connection_id=new_call_id())
    async with start_server(rate_limits=False) as second:
        # Each test server signs with a secret of its own.
        alice = User(alice.id, alice.name, second.token(alice.id, alice.name))
        records = {c["id"]: c for c in await call_history(second, alice, conversation_id)}
    assert records[missed.id]["end_reason"] == "timeout"
    assert records[talking.id]["end_reason"] == "disconnected"
    assert records[talking.id]["answered_at"] is not None


# -- disconnect ----------------------------------------------------------------------------


async def test_last_connection_closing_ends_the_call(server: RunningServer) -> None:
    """When a party's last connection closes, the other party gets
    `CallHangup{reason:"disconnected"}` naming who left."""
    call = await active(server)
    await call.b.close()
    relayed = await call.a.expect("CallHangup", timeout=TIMEOUT)
    assert relayed == {"type": "CallHangup", "call_id": call.call_id,
                       "conversation_id": call.conversation_id,
                       "from_user_id": call.bob.id, "reason": "disconnected"}


async def test_caller_leaving_stops_the_ringing(server: RunningServer) -> None:
    """A caller whose last connection closes while ringing ends the call for the callee."""
    call = await ringing(server)
    await call.a.close()
    relayed = await call.b.expect("CallHangup", timeout=TIMEOUT)
    assert relayed["reason"] == "disconnected"
    assert relayed["from_user_id"] == call.alice.id


async def test_another_connection_keeps_the_call(server: RunningServer) -> None:
    """A party with a connection left is still in the call: nothing ends it. (The caller's
    signalling still goes to the answering connection alone, which is gone.)"""
    call = await active(server)
    spare = await server.connect(call.bob)
    await call.b.close()
    await call.a.expect_none("CallHangup", within=0.5)
    await confirmed(call.a, "ICECandidate", call_id=call.call_id, candidate=CANDIDATE)
    [record] = await call_history(server, call.alice, call.conversation_id)
    assert record["state"] == "active"
    await spare.expect_none("ICECandidate")


async def test_a_disconnected_call_is_recorded_as_such(server: RunningServer) -> None:
    """The history keeps a call that ended by a disconnect, with when it was answered."""
    call = await active(server)
    await call.b.close()
    await call.a.expect("CallHangup", timeout=TIMEOUT, reason="disconnected")
    [record] = await call_history(server, call.alice, call.conversation_id)
    assert record["state"] == "ended"
    assert record["end_reason"] == "disconnected"
    assert record["answered_at"] is not None


async def test_the_callers_signalling_reaches_the_answering_device_only(
        server: RunningServer) -> None:
    """Once the callee answered on one device, the caller's candidates, renegotiation offers
    and answers reach that device alone: the other one, told `answered_elsewhere`, hears
    none of them."""
    call, laptop = await offered_to_two_devices(server)
    conversation_id, call_id, alice, a, phone = (call.conversation_id, call.call_id,
                                                 call.alice, call.a, call.b)
    for device in (phone, laptop):
        await device.expect("CallOffer", timeout=TIMEOUT, call_id=call_id)
    await confirmed(phone, "CallAnswer", call_id=call_id, sdp=ANSWER_SDP)
    await laptop.expect("CallHangup", timeout=TIMEOUT, reason="answered_elsewhere")
    await a.expect("CallAnswer", timeout=TIMEOUT)
    await confirmed(a, "ICECandidate", call_id=call_id, candidate=CANDIDATE)
    await confirmed(a, "CallOffer", conversation_id=conversation_id, call_id=call_id,
                    sdp=OFFER_SDP, call_type="video")
    await confirmed(phone, "CallOffer", conversation_id=conversation_id, call_id=call_id,
                    sdp=OFFER_SDP, call_type="video")
    await a.expect("CallOffer", timeout=TIMEOUT, call_id=call_id)
    await confirmed(a, "CallAnswer", call_id=call_id, sdp=ANSWER_SDP)
    assert (await phone.expect("ICECandidate", timeout=TIMEOUT))["candidate"] == CANDIDATE
    assert (await phone.expect("CallOffer", timeout=TIMEOUT))["from_user_id"] == alice.id
    assert (await phone.expect("CallAnswer", timeout=TIMEOUT))["from_user_id"] == alice.id
    await laptop.expect_none("ICECandidate")
    await laptop.expect_none("CallOffer", within=0.0)
    await laptop.expect_none("CallAnswer", within=0.0)


@dataclass
class GroupCall:
    """A call from bob to carol in a group that alice owns."""

    group: str
    call_id: str
    alice: User
    bob: User
    carol: User
    b: ChatClient
    c: ChatClient


async def bob_calls_carol(server: RunningServer, answered: bool = True) -> GroupCall:
    """A group call from bob to carol, answered or still ringing."""
    group, alice, bob, carol = await group_of_three(server)
    b, c = await server.connect(bob), await server.connect(carol)
    call_id = new_call_id()
    await confirmed(b, "CallOffer", conversation_id=group, call_id=call_id, sdp=OFFER_SDP,
                    call_type="audio", target_user_id=carol.id)
    await c.expect("CallOffer", timeout=TIMEOUT, call_id=call_id)
    if answered:
        await confirmed(c, "CallAnswer", call_id=call_id, sdp=ANSWER_SDP)
        await b.expect("CallAnswer", timeout=TIMEOUT)
    return GroupCall(group, call_id, alice, bob, carol, b, c)


async def party_lost_send(server: RunningServer, how: str, answered: bool) -> None:
    """bob calls carol, then bob leaves or carol gets role `how`: both hear
    `CallHangup{reason:"removed"}` and the record says so."""
    call = await bob_calls_carol(server, answered)
    lost, stays = (call.bob, call.carol) if how == "left" else (call.carol, call.bob)
    if how == "left":
        async with server.http(call.bob) as http:
            response = await http.delete(
                f"/api/v1/conversations/{call.group}/members/{call.bob.id}")
        assert response.status_code == 204, response.text
    else:
        assert await set_role(server, call.alice, call.group, call.carol, how) == 200
    expected = {"type": "CallHangup", "call_id": call.call_id, "conversation_id": call.group,
                "from_user_id": lost.id, "reason": "removed"}
    assert await call.b.expect("CallHangup", timeout=TIMEOUT) == expected
    assert await call.c.expect("CallHangup", timeout=TIMEOUT) == expected
    [record] = await call_history(server, stays, call.group)
    assert (record["state"], record["end_reason"]) == ("ended", "removed")
    await refused(call.c, "ICECandidate", "CONFLICT", call_id=call.call_id,
                  candidate=CANDIDATE)
    await call.b.expect_none("ICECandidate")


@pytest.mark.parametrize("how", ["banned", "read_only", "left"])
async def test_a_party_who_loses_send_ends_the_active_call(server: RunningServer,
                                                           how: str) -> None:
    """Banned, made `read_only`, or gone from the conversation: the call ends for both."""
    await party_lost_send(server, how, answered=True)


async def test_a_banned_callee_stops_ringing(server: RunningServer) -> None:
    """A ringing call ends the same way when its callee is banned."""
    await party_lost_send(server, "banned", answered=False)


async def test_a_role_that_keeps_send_keeps_the_call(server: RunningServer) -> None:
    """A role change that leaves `send` (member to moderator) ends nothing."""
    call = await bob_calls_carol(server)
    assert await set_role(server, call.alice, call.group, call.carol, "moderator") == 200
    await call.c.expect_none("CallHangup", within=0.5)
    await confirmed(call.c, "ICECandidate", call_id=call.call_id, candidate=CANDIDATE)
    await call.b.expect("ICECandidate", timeout=TIMEOUT)
    await call.b.expect_none("CallHangup", within=0.0)


# -- renegotiation -------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["caller", "callee"])
async def test_renegotiation_goes_to_the_other_party_only(server: RunningServer,
                                                          who: str) -> None:
    """On an active call either party's `CallOffer` with the same call_id is relayed to the
    other party (and to nobody else), who answers with `CallAnswer`."""
    call = await active(server)
    offerer, offeree = (call.a, call.b) if who == "caller" else (call.b, call.a)
    offerer_id, offeree_id = ((call.alice.id, call.bob.id) if who == "caller"
                              else (call.bob.id, call.alice.id))
    offerer_tab = await server.connect(call.alice if who == "caller" else call.bob)
    await confirmed(offerer, "CallOffer", conversation_id=call.conversation_id,
                    call_id=call.call_id, sdp=OFFER_SDP + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n",
                    call_type="video")
    offer = await offeree.expect("CallOffer", timeout=TIMEOUT)
    assert offer["call_id"] == call.call_id
    assert offer["from_user_id"] == offerer_id
    assert offer["target_user_id"] == offeree_id
    assert offer["sdp"].endswith("m=video 9 UDP/TLS/RTP/SAVPF 96\r\n")
    await offerer_tab.expect_none("CallOffer")
    await confirmed(offeree, "CallAnswer", call_id=call.call_id, sdp=ANSWER_SDP)
    answer = await offerer.expect("CallAnswer", timeout=TIMEOUT)
    assert answer["from_user_id"] == offeree_id


# -- reused call ids -----------------------------------------------------------------------


async def test_reusing_a_ringing_call_id_is_a_conflict(server: RunningServer) -> None:
    """An offer with the call_id of a call still ringing is a `CONFLICT`, even from its
    caller."""
    call = await ringing(server)
    await refused(call.a, "CallOffer", "CONFLICT", conversation_id=call.conversation_id,
                  call_id=call.call_id, sdp=OFFER_SDP, call_type="video")
    await call.b.expect_none("CallOffer")


async def test_reusing_an_ended_call_id_is_a_conflict(server: RunningServer) -> None:
    """An ended call cannot be renegotiated or placed again: `CONFLICT`."""
    call = await active(server)
    await confirmed(call.a, "CallHangup", call_id=call.call_id)
    await refused(call.a, "CallOffer", "CONFLICT", conversation_id=call.conversation_id,
                  call_id=call.call_id, sdp=OFFER_SDP, call_type="video")


async def test_someone_elses_call_id_is_a_conflict(server: RunningServer) -> None:
    """An offer by a non-participant with a used call_id is a `CONFLICT` and reaches
    nobody."""
    call = await active(server)
    other_conversation, carol, _ = await direct_pair(server)
    c = await server.connect(carol)
    await refused(c, "CallOffer", "CONFLICT", conversation_id=other_conversation,
                  call_id=call.call_id, sdp=OFFER_SDP, call_type="audio")
    await call.a.expect_none("CallOffer")
    await call.b.expect_none("CallOffer", within=0.0)


async def test_renegotiation_in_another_conversation_is_a_conflict(
        server: RunningServer) -> None:
    """The call_id of an active call offered in a different conversation is a `CONFLICT`."""
    call = await active(server)
    group = await server.create_conversation(call.alice, kind="group", name="g",
                                             members=[call.bob])
    await refused(call.a, "CallOffer", "CONFLICT", conversation_id=group["id"],
                  call_id=call.call_id, sdp=OFFER_SDP, call_type="audio",
                  target_user_id=call.bob.id)


# -- the record ----------------------------------------------------------------------------


async def test_a_finished_call_is_in_the_history(server: RunningServer) -> None:
    """A call answered and hung up leaves a record both parties see, with its times."""
    call = await active(server)
    await confirmed(call.b, "CallHangup", call_id=call.call_id)
    await call.a.expect("CallHangup", timeout=TIMEOUT)
    [seen_by_alice] = await call_history(server, call.alice, call.conversation_id)
    [seen_by_bob] = await call_history(server, call.bob, call.conversation_id)
    assert seen_by_alice == seen_by_bob
    assert seen_by_alice["end_reason"] == "hangup"
    assert seen_by_alice["created_at"] <= seen_by_alice["answered_at"]
    assert seen_by_alice["answered_at"] <= seen_by_alice["ended_at"]


async def test_the_history_shows_only_ones_own_calls(server: RunningServer) -> None:
    """A member sees the calls it took part in, not the calls between others."""
    group, alice, bob, carol = await group_of_three(server)
    a, b = await server.connect(alice), await server.connect(bob)
    call_id = new_call_id()
    await confirmed(a, "CallOffer", conversation_id=group, call_id=call_id, sdp=OFFER_SDP,
                    call_type="audio", target_user_id=bob.id)
    await b.expect("CallOffer", timeout=TIMEOUT)
    assert [c["id"] for c in await call_history(server, bob, group)] == [call_id]
    assert await call_history(server, carol, group) == []


async def test_the_history_is_for_members_only(server: RunningServer) -> None:
    """A non-member asking for a conversation's calls gets 403."""
    group, _, _, _ = await group_of_three(server)
    stranger = server.user("stranger")
    await server.ensure_user(stranger)
    async with server.http(stranger) as http:
        response = await http.get(f"/api/v1/conversations/{group}/calls")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"
