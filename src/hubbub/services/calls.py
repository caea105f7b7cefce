"""Calls (PROTOCOL.md §3): the signalling relay over the state machine of domain/calls.py.

A call's state lives in the `CallStore`, where every instance sees it. Each action reads
the call, asks the domain for its step, writes the transition conditionally (so of two
instances, or two devices, exactly one wins) and publishes the relays after the commit.

Relays go to user topics: every connection of the other party, on every instance. The
callee's devices that did not answer learn it from `CallHangup{reason:"answered_elsewhere"}`
sent to the callee's own topic with the answering connection excluded: one publish,
filtered by each instance's hub, with no per-connection state anywhere. A callee's reject
(or hangup) while ringing stops its other devices the same way (`rejected_elsewhere`).
Once answered, the caller's signalling goes to the callee's topic aimed at the answering
connection alone (`Envelope.only_connection`), which is in the call's record.

A party who loses the `send` permission in the conversation (banned, removed, made
`read_only`) ends its open calls there: every instance hears the `MembershipChanged`
control event, and the conditional transition lets exactly one of them announce it.

How calls end — ring timeouts, parties gone, the sweep and the settling at start — is in
services/call_endings.py.

Actions on one call are handled one at a time per instance, in arrival order, so that a
connection's offer, candidates and answer are relayed in the order it sent them.
"""

from __future__ import annotations

from typing import Any, Literal

from hubbub.bus.envelope import ControlEvent
from hubbub.domain.calls import (
    Call,
    CallEvent,
    CallState,
    Party,
    check_candidate_size,
    check_device,
    step,
)
from hubbub.domain.errors import BadRequest, Conflict, Forbidden, NotFound
from hubbub.domain.permissions import Ability, can
from hubbub.logs import get_logger
from hubbub.protocol import server as s
from hubbub.protocol.codec import encode_json
from hubbub.protocol.objects import canonical_user_id
from hubbub.services.access import Access, require_conversation
from hubbub.services.call_endings import CallEndings, Online
from hubbub.services.context import Actor, Clock, now_micros
from hubbub.services.events import Events
from hubbub.services.locks import KeyedLocks
from hubbub.services.membership import MembershipCache
from hubbub.services.webhook_events import OFF, WebhookEvents
from hubbub.storage.calls import CallStore
from hubbub.storage.conversations import ConversationStore
from hubbub.storage.members import MemberStore

log = get_logger("hubbub.calls")


class CallService:
    """Places, answers and ends calls, and relays their signalling."""

    def __init__(self, calls: CallStore, conversations: ConversationStore,
                 members: MemberStore, memberships: MembershipCache, access: Access,
                 events: Events, ring_timeout: float, *, clock: Clock = now_micros,
                 webhooks: WebhookEvents = OFF) -> None:
        self._calls = calls
        self._conversations = conversations
        self._members = members
        self._memberships = memberships
        self._access = access
        self._events = events
        self._clock = clock
        self._locks = KeyedLocks()
        self._endings = CallEndings(calls, memberships, events, ring_timeout, clock,
                                    self._locks, webhooks)

    async def start(self, online: Online) -> None:
        """Settle the calls that stopped instances left open, then keep watch for ringing
        calls whose timer is gone (call_endings.py). Call once the bus is started."""
        await self._endings.start(online)

    async def close(self) -> None:
        """Stop the timers of this instance (the calls end when next touched, or when
        another instance sweeps)."""
        await self._endings.close()

    async def user_offline(self, user_id: str) -> None:
        """Presence listener: the user's last connection anywhere closed, so each of their
        open calls ends, and the other party hears `disconnected`."""
        await self._endings.user_offline(user_id)

    def on_control(self, event: ControlEvent) -> None:
        """Bus listener: a membership changed; a party who lost `send` ends its calls."""
        self._endings.on_control(event)

    # -- the five client messages --------------------------------------------------------

    async def offer(self, actor: Actor, connection_id: str, conversation_id: str,
                    call_id: str, sdp: str, call_type: Literal["audio", "video"],
                    target_user_id: str | None) -> None:
        """Place a call (a new `call_id`): it rings on every connection of the target.
        On an active call of the actor's, renegotiate instead: relay to the other party.

        Raises:
            NotFound: unknown conversation; Forbidden: the caller or the target may not
            call here; BadRequest: no target in a group or channel, or oneself;
            Conflict: the call_id is taken by anything but the actor's active call.
        """
        if target_user_id is not None:
            target_user_id = canonical_user_id(target_user_id)
        async with self._locks.hold(call_id):
            existing = await self._calls.get_call(call_id)
            if existing is not None:
                await self._renegotiate(actor, connection_id, existing, conversation_id, sdp,
                                        call_type, target_user_id)
                return
            callee_id = await self._target(actor, conversation_id, target_user_id)
            call = Call(
                id=call_id, conversation_id=conversation_id, caller_id=actor.user_id,
                callee_id=callee_id, call_type=call_type, state=CallState.RINGING,
                created_at=self._clock(),
            )
            if not await self._calls.create_call(call):
                raise Conflict("call_id is already in use - at `$.call_id`")
            self._endings.ring(call.id)
            self._events.to_user(callee_id, s.CallOffer(
                call_id=call_id, conversation_id=conversation_id, sdp=sdp,
                call_type=call_type, from_user_id=actor.user_id, target_user_id=callee_id,
            ))
            log.info("call.ringing", call_id=call_id, conversation_id=conversation_id,
                     caller_id=actor.user_id, callee_id=callee_id, call_type=call_type)

    async def answer(self, actor: Actor, connection_id: str, call_id: str, sdp: str) -> None:
        """Answer a ringing call (the first device wins; the callee's others are told
        `answered_elsewhere`), or answer a renegotiation on an active one.

        Raises:
            NotFound, Forbidden: not a party, or the caller answering its own call;
            Conflict: the call was answered on another device, or has ended.
        """
        async with self._locks.hold(call_id):
            call, party = await self._load(actor, call_id)
            step(call.state, CallEvent.ANSWER, party)
            check_device(call, party, connection_id)
            relay = s.CallAnswer(call_id=call_id, conversation_id=call.conversation_id,
                                 sdp=sdp, from_user_id=actor.user_id)
            if call.state is CallState.ACTIVE:
                self._relay(call, party, relay)
                return
            answered = await self._calls.transition(call_id, CallState.RINGING,
                                                    CallState.ACTIVE, self._clock(),
                                                    connection_id=connection_id)
            if answered is None:
                raise Conflict("the call was answered elsewhere or has ended")
            self._endings.stop_ringing(call_id)
            self._relay(call, party, relay)
            self._events.to_user(actor.user_id, s.CallHangup(
                call_id=call_id, conversation_id=call.conversation_id,
                from_user_id=actor.user_id, reason="answered_elsewhere",
            ), exclude_connection=connection_id)
            log.info("call.active", call_id=call_id, conversation_id=call.conversation_id)

    async def candidate(self, actor: Actor, connection_id: str, call_id: str,
                        candidate: Any) -> None:
        """Relay an ICE candidate to the other party (the callee's answering connection
        once answered).

        Raises:
            BadRequest: over 4 KiB encoded; NotFound, Forbidden: not a party;
            Conflict: the call ended, or another of the callee's devices answered it.
        """
        check_candidate_size(len(encode_json(candidate)))
        async with self._locks.hold(call_id):
            call, party = await self._load(actor, call_id)
            step(call.state, CallEvent.CANDIDATE, party)
            check_device(call, party, connection_id)
            self._relay(call, party, s.ICECandidate(
                call_id=call_id, conversation_id=call.conversation_id, candidate=candidate,
                from_user_id=actor.user_id,
            ))

    async def hangup(self, actor: Actor, connection_id: str, call_id: str,
                     reason: str | None) -> None:
        """End the call for both; a no-op when it has ended already.

        Raises:
            NotFound, Forbidden: not a party.
        """
        async with self._locks.hold(call_id):
            call, party = await self._load(actor, call_id)
            ended = await self._endings.end(call, CallEvent.HANGUP, party)
            if ended is None:
                return
            before, call = ended
            self._events.to_user(call.other(party), s.CallHangup(
                call_id=call_id, conversation_id=call.conversation_id,
                from_user_id=actor.user_id, reason=reason,
            ))
            if before is CallState.RINGING and party is Party.CALLEE:
                self._rejected_elsewhere(call, connection_id)

    async def reject(self, actor: Actor, connection_id: str, call_id: str,
                     reason: str | None) -> None:
        """Decline a ringing call (the callee only); a no-op when it has ended already.

        Raises:
            NotFound, Forbidden: not a party, or the caller; Conflict: already answered.
        """
        async with self._locks.hold(call_id):
            call, party = await self._load(actor, call_id)
            ended = await self._endings.end(call, CallEvent.REJECT, party)
            if ended is None:
                return
            _, call = ended
            self._events.to_user(call.caller_id, s.CallReject(
                call_id=call_id, conversation_id=call.conversation_id,
                from_user_id=actor.user_id, reason=reason,
            ))
            self._rejected_elsewhere(call, connection_id)

    # -- lifecycle events ----------------------------------------------------------------

    async def history(self, actor: Actor, conversation_id: str, before: int | None,
                      limit: int) -> list[Call]:
        """The conversation's calls the actor took part in, newest first.

        Raises:
            NotFound: unknown conversation; Forbidden: not a member who may read it.
        """
        await self._access.require_ability(actor, conversation_id, Ability.READ,
                                           what="see calls")
        return await self._calls.list_calls(conversation_id, actor.user_id, before, limit)

    # -- helpers -------------------------------------------------------------------------

    def _relay(self, call: Call, sender: Party, message: s.ServerMessage) -> None:
        """Signalling from `sender` to the other party (domain: `Call.relay_target`)."""
        user_id, connection_id = call.relay_target(sender)
        self._events.to_user(user_id, message, only_connection=connection_id)

    async def _target(self, actor: Actor, conversation_id: str,
                      target_user_id: str | None) -> str:
        """The callee of a new call: the other member of a direct conversation, or the
        named member, who must be allowed to take part in calls (§5 `send`)."""
        await self._access.require_ability(actor, conversation_id, Ability.SEND,
                                           what="place calls")
        if target_user_id == actor.user_id:
            raise BadRequest("cannot call yourself - at `$.target_user_id`")
        conversation = await require_conversation(self._conversations, conversation_id)
        if target_user_id is None:
            if conversation.kind != "direct":
                raise BadRequest("target_user_id is required outside direct conversations"
                                 " - at `$.target_user_id`")
            others = [m.user_id for m in await self._members.list_members(conversation_id)
                      if m.user_id != actor.user_id]
            if not others:
                raise Forbidden("nobody else is in this conversation")
            target_user_id = others[0]
        if not can(await self._memberships.role(conversation_id, target_user_id),
                   Ability.SEND):
            raise Forbidden("the target is not a member who may take calls here - at "
                            "`$.target_user_id`")
        return target_user_id

    async def _renegotiate(self, actor: Actor, connection_id: str, call: Call,
                           conversation_id: str, sdp: str, call_type: Literal["audio", "video"],
                           target_user_id: str | None) -> None:
        """§3: a party's CallOffer on its active call goes to the other party only (the
        callee's answering connection); any other offer with a used call_id is a CONFLICT."""
        party = call.party(actor.user_id)
        if party is None or call.conversation_id != conversation_id:
            raise Conflict("call_id is already in use - at `$.call_id`")
        call = await self._endings.expire_if_due(call)
        step(call.state, CallEvent.OFFER, party)  # only an active call: Conflict otherwise
        check_device(call, party, connection_id)
        other = call.other(party)
        if target_user_id is not None and target_user_id != other:
            raise Conflict("a renegotiation goes to the other party of the call - at "
                           "`$.target_user_id`")
        self._relay(call, party, s.CallOffer(
            call_id=call.id, conversation_id=call.conversation_id, sdp=sdp,
            call_type=call_type, from_user_id=actor.user_id, target_user_id=other,
        ))

    async def _load(self, actor: Actor, call_id: str) -> tuple[Call, Party]:
        """The call (ended first if its ring timed out unwatched) and the actor's side.

        Raises:
            NotFound: unknown call; Forbidden: the actor is not a party of it.
        """
        call = await self._calls.get_call(call_id)
        if call is None:
            raise NotFound("unknown call - at `$.call_id`")
        party = call.party(actor.user_id)
        if party is None:
            raise Forbidden("only the call's participants may do that")
        return await self._endings.expire_if_due(call), party

    def _rejected_elsewhere(self, call: Call, connection_id: str) -> None:
        """Stop the callee's other devices ringing."""
        self._events.to_user(call.callee_id, s.CallHangup(
            call_id=call.id, conversation_id=call.conversation_id,
            from_user_id=call.callee_id, reason="rejected_elsewhere",
        ), exclude_connection=connection_id)
