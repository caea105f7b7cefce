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

Ring timeouts: the instance that placed the call keeps a timer. Should that instance stop,
a ringing call past its deadline is ended by whoever touches it next, or by the sweep every
instance runs once per ring timeout. An instance that starts also ends the open calls of
parties who are connected nowhere (left behind by an instance that stopped).

Actions on one call are handled one at a time per instance, in arrival order, so that a
connection's offer, candidates and answer are relayed in the order it sent them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal, get_args

from hubbub.bus.envelope import ControlEvent
from hubbub.domain.calls import (
    Call,
    CallEvent,
    CallState,
    EndReason,
    Party,
    check_candidate_size,
    check_device,
    step,
)
from hubbub.domain.clock import format_optional, format_time
from hubbub.domain.errors import BadRequest, Conflict, Forbidden, NotFound
from hubbub.domain.permissions import Ability, can
from hubbub.logs import get_logger
from hubbub.protocol import server as s
from hubbub.protocol.codec import encode_json
from hubbub.protocol.objects import CallObject, Role
from hubbub.services.access import Access
from hubbub.services.context import Actor, Clock, now_micros
from hubbub.services.events import Events
from hubbub.services.membership import MembershipCache
from hubbub.services.webhook_events import OFF, WebhookEvents, call_missed
from hubbub.storage.calls import CallStore
from hubbub.storage.conversations import ConversationStore
from hubbub.storage.members import MemberStore

log = get_logger("hubbub.calls")

# Which of these users are connected anywhere (PresenceService.online).
Online = Callable[[list[str]], Awaitable[set[str]]]

# Calls settled per query at start and per sweep; a backlog bigger than this is worked
# through batch by batch (at start) or sweep by sweep.
SWEEP_BATCH = 500
# A transition lost to a concurrent one is decided again on the fresh state; a call moves
# at most twice (ringing → active → ended), so two retries always suffice.
_ATTEMPTS = 3
# The roles that may take part in calls (§5 `send`); any other role, or none, ends them.
_CALLING_ROLES = frozenset(role for role in get_args(Role) if can(role, Ability.SEND))


class CallService:
    """Places, answers and ends calls, and relays their signalling."""

    def __init__(self, calls: CallStore, conversations: ConversationStore,
                 members: MemberStore, memberships: MembershipCache, access: Access,
                 events: Events, ring_timeout: float, *, clock: Clock = now_micros,
                 webhooks: WebhookEvents = OFF) -> None:
        self._calls = calls
        self._webhooks = webhooks
        self._missed = call_missed(call_object)
        self._conversations = conversations
        self._members = members
        self._memberships = memberships
        self._access = access
        self._events = events
        self._clock = clock
        self._ring_timeout = ring_timeout
        self._ring_timeout_us = int(ring_timeout * 1_000_000)
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._locks = _KeyedLocks()
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self, online: Online) -> None:
        """Settle the calls that stopped instances left open, then keep watch for ringing
        calls whose timer is gone. Call once the bus is started.

        An open call ends as `timeout` when it rang past the ring timeout, and as
        `disconnected` when a party is connected nowhere (`online`): the instance that
        would have noticed is gone. Calls of connected parties are left alone.
        """
        after: tuple[int, str] | None = None
        while True:
            batch = await self._calls.open_calls(after, SWEEP_BATCH)
            parties = sorted({uid for call in batch for uid in (call.caller_id, call.callee_id)})
            present = await online(parties) if parties else set()
            for call in batch:
                async with self._locks.hold(call.id):
                    await self._settle(call, present)
            if len(batch) < SWEEP_BATCH:
                break
            after = (batch[-1].created_at, batch[-1].id)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def close(self) -> None:
        """Stop the timers of this instance (the calls end when next touched, or when
        another instance sweeps)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

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
            self._ring(call.id)
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
            self._stop_ringing(call_id)
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
            ended = await self._end(call, CallEvent.HANGUP, party)
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
            ended = await self._end(call, CallEvent.REJECT, party)
            if ended is None:
                return
            _, call = ended
            self._events.to_user(call.caller_id, s.CallReject(
                call_id=call_id, conversation_id=call.conversation_id,
                from_user_id=actor.user_id, reason=reason,
            ))
            self._rejected_elsewhere(call, connection_id)

    # -- lifecycle events ----------------------------------------------------------------

    async def user_offline(self, user_id: str) -> None:
        """Presence listener: the user's last connection anywhere closed, so each of their
        open calls ends, and the other party hears `disconnected`."""
        try:
            for call in await self._calls.open_calls_of(user_id):
                async with self._locks.hold(call.id):
                    await self._disconnect(call, user_id)
        except Exception:  # the other presence listeners still run
            log.exception("call.disconnect_failed", user_id=user_id)

    def on_control(self, event: ControlEvent) -> None:
        """Bus listener: a membership changed. A user who may no longer take part in calls
        in the conversation ends its open calls there (`removed`, to both parties)."""
        if event.role in _CALLING_ROLES:
            return
        task = asyncio.get_running_loop().create_task(
            self._membership_lost(event.conversation_id, event.user_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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

    async def _disconnect(self, call: Call, user_id: str) -> None:
        """End the call because `user_id` is connected nowhere; tell the other party."""
        await self._end_for(call, user_id, CallEvent.DISCONNECT, "disconnected")

    async def _membership_lost(self, conversation_id: str, user_id: str) -> None:
        """End the user's open calls in the conversation unless it may call there again
        (the role is read afresh: a later change may have reinstated it)."""
        try:
            if can(await self._memberships.role(conversation_id, user_id), Ability.SEND):
                return
            for call in await self._calls.open_calls_of(user_id):
                if call.conversation_id == conversation_id:
                    async with self._locks.hold(call.id):
                        await self._end_for(call, user_id, CallEvent.REMOVE, "removed",
                                            tell_user=True)
        except Exception:  # a task nobody awaits: report here, never lose it
            log.exception("call.remove_failed", conversation_id=conversation_id,
                          user_id=user_id)

    async def _end_for(self, call: Call, user_id: str, event: CallEvent, reason: str,
                       tell_user: bool = False) -> None:
        """End the call for what happened to `user_id` and tell the other party (and the
        user's own connections, if `tell_user`), `from_user_id` the user; nothing is told
        when the call had ended already."""
        party = call.party(user_id)
        assert party is not None, "the calls of a user are calls it is a party of"
        if await self._end(call, event, party) is None:
            return
        hangup = s.CallHangup(call_id=call.id, conversation_id=call.conversation_id,
                              from_user_id=user_id, reason=reason)
        self._events.to_user(call.other(party), hangup)
        if tell_user:
            self._events.to_user(user_id, hangup)

    def _relay(self, call: Call, sender: Party, message: s.ServerMessage) -> None:
        """Signalling from `sender` to the other party (domain: `Call.relay_target`)."""
        user_id, connection_id = call.relay_target(sender)
        self._events.to_user(user_id, message, only_connection=connection_id)

    async def _settle(self, call: Call, present: set[str]) -> None:
        """At start: end an open call that nobody can finish any more."""
        if call.ring_expired(self._clock(), self._ring_timeout_us):
            await self._expire(call)
            return
        for user_id in (call.caller_id, call.callee_id):
            if user_id not in present:
                await self._disconnect(call, user_id)
                return

    async def _sweep(self) -> None:
        """Every ring timeout, end the ringing calls older than it: their timers were lost
        with an instance that stopped."""
        while True:
            await asyncio.sleep(self._ring_timeout)
            try:
                cutoff = self._clock() - self._ring_timeout_us
                for call in await self._calls.ringing_before(cutoff, SWEEP_BATCH):
                    async with self._locks.hold(call.id):
                        await self._expire(call)
            except Exception:  # keep sweeping; a failed round is retried by the next
                log.exception("call.sweep_failed")

    async def _target(self, actor: Actor, conversation_id: str,
                      target_user_id: str | None) -> str:
        """The callee of a new call: the other member of a direct conversation, or the
        named member, who must be allowed to take part in calls (§5 `send`)."""
        await self._access.require_ability(actor, conversation_id, Ability.SEND,
                                           what="place calls")
        if target_user_id == actor.user_id:
            raise BadRequest("cannot call yourself - at `$.target_user_id`")
        conversation = await self._conversations.get_conversation(conversation_id)
        if conversation is None:
            raise NotFound("unknown conversation - at `$.conversation_id`")
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
        call = await self._expire_if_due(call)
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
        return await self._expire_if_due(call), party

    async def _expire_if_due(self, call: Call) -> Call:
        if not call.ring_expired(self._clock(), self._ring_timeout_us):
            return call
        expired = await self._expire(call)
        if expired is not None:
            return expired
        fresh = await self._calls.get_call(call.id)
        assert fresh is not None
        return fresh

    async def _end(self, call: Call, event: CallEvent,
                   party: Party) -> tuple[CallState, Call] | None:
        """Take the step of `event` that ends the call: (the state it left, the ended call),
        or None when it had ended already (nothing to announce).

        Raises:
            Forbidden, Conflict: the step is not allowed (domain/calls.py).
        """
        for _ in range(_ATTEMPTS):
            taken = step(call.state, event, party)
            if taken.target is call.state:
                return None
            with self._webhooks.emit(self._missed):
                moved = await self._calls.transition(call.id, call.state, taken.target,
                                                     self._clock(), taken.end_reason)
            if moved is not None:
                self._stop_ringing(call.id)
                log.info("call.ended", call_id=call.id, conversation_id=call.conversation_id,
                         end_reason=str(taken.end_reason), was=call.state.value)
                return call.state, moved
            fresh = await self._calls.get_call(call.id)
            assert fresh is not None
            call = fresh
        raise Conflict("the call changed while ending it; try again")

    async def _expire(self, call: Call) -> Call | None:
        """End a ringing call as unanswered; tell both parties. None if it was not ringing."""
        taken = step(CallState.RINGING, CallEvent.TIMEOUT, Party.SERVER)
        with self._webhooks.emit(self._missed):
            moved = await self._calls.transition(call.id, CallState.RINGING, taken.target,
                                                 self._clock(), taken.end_reason)
        self._stop_ringing(call.id)
        if moved is None:
            return None
        hangup = s.CallHangup(call_id=call.id, conversation_id=call.conversation_id,
                              from_user_id=None, reason="timeout")
        self._events.to_user(call.caller_id, hangup)
        self._events.to_user(call.callee_id, hangup)
        log.info("call.ended", call_id=call.id, conversation_id=call.conversation_id,
                 end_reason=EndReason.TIMEOUT.value, was=CallState.RINGING.value)
        return moved

    def _rejected_elsewhere(self, call: Call, connection_id: str) -> None:
        """Stop the callee's other devices ringing."""
        self._events.to_user(call.callee_id, s.CallHangup(
            call_id=call.id, conversation_id=call.conversation_id,
            from_user_id=call.callee_id, reason="rejected_elsewhere",
        ), exclude_connection=connection_id)

    def _ring(self, call_id: str) -> None:
        loop = asyncio.get_running_loop()
        self._timers[call_id] = loop.call_later(self._ring_timeout, self._ring_timed_out,
                                                call_id)

    def _stop_ringing(self, call_id: str) -> None:
        timer = self._timers.pop(call_id, None)
        if timer is not None:
            timer.cancel()

    def _ring_timed_out(self, call_id: str) -> None:
        self._timers.pop(call_id, None)
        task = asyncio.get_running_loop().create_task(self._time_out(call_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _time_out(self, call_id: str) -> None:
        try:
            async with self._locks.hold(call_id):
                call = await self._calls.get_call(call_id)
                if call is not None and call.state is CallState.RINGING:
                    await self._expire(call)
        except Exception:  # a task nobody awaits: report here, never lose it
            log.exception("call.timeout_failed", call_id=call_id)


def call_object(call: Call) -> CallObject:
    """The wire form of a call record (the call history)."""
    return CallObject(
        id=call.id, conversation_id=call.conversation_id, caller_id=call.caller_id,
        callee_id=call.callee_id, call_type=call.call_type, state=call.state.value,
        created_at=format_time(call.created_at), answered_at=format_optional(call.answered_at),
        ended_at=format_optional(call.ended_at),
        end_reason=None if call.end_reason is None else call.end_reason.value,
    )


class _KeyedLocks:
    """One FIFO lock per key, forgotten when nobody holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[key]
