"""How calls end (PROTOCOL.md §3), whoever ends them: a party's step (hangup, reject), the
ring timeout, a party connected nowhere any more, a party who lost the `send` permission,
and the settling of what a stopped instance left open.

Ring timeouts: the instance that placed the call keeps a timer. Should that instance stop,
a ringing call past its deadline is ended by whoever touches it next, or by the sweep every
instance runs once per ring timeout. An instance that starts also ends the open calls of
parties who are connected nowhere (left behind by an instance that stopped). Every end is
a conditional transition in the store, so of two instances exactly one announces it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import get_args

from hubbub.bus.envelope import ControlEvent
from hubbub.domain.calls import Call, CallEvent, CallState, EndReason, Party, step
from hubbub.domain.errors import Conflict
from hubbub.domain.permissions import Ability, can
from hubbub.logs import get_logger
from hubbub.protocol import server as s
from hubbub.protocol.objects import Role
from hubbub.services.context import Clock
from hubbub.services.events import Events
from hubbub.services.locks import KeyedLocks
from hubbub.services.membership import MembershipCache
from hubbub.services.views import call_object
from hubbub.services.webhook_events import WebhookEvents, call_missed
from hubbub.storage.calls import CallStore

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


class CallEndings:
    """Ends calls and keeps their ring timers; the signalling is CallService's."""

    def __init__(self, calls: CallStore, memberships: MembershipCache, events: Events,
                 ring_timeout: float, clock: Clock, locks: KeyedLocks,
                 webhooks: WebhookEvents) -> None:
        self._calls = calls
        # `call.missed` for the backend (webhooks): committed with the end of the call.
        self._webhooks = webhooks
        self._missed = call_missed(call_object)
        self._memberships = memberships
        self._events = events
        self._clock = clock
        self._ring_timeout = ring_timeout
        self._ring_timeout_us = int(ring_timeout * 1_000_000)
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._locks = locks
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
        if await self.end(call, event, party) is None:
            return
        hangup = s.CallHangup(call_id=call.id, conversation_id=call.conversation_id,
                              from_user_id=user_id, reason=reason)
        self._events.to_user(call.other(party), hangup)
        if tell_user:
            self._events.to_user(user_id, hangup)

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

    async def expire_if_due(self, call: Call) -> Call:
        """The call as it is now: ended first if it rang past the timeout unwatched."""
        if not call.ring_expired(self._clock(), self._ring_timeout_us):
            return call
        expired = await self._expire(call)
        if expired is not None:
            return expired
        fresh = await self._calls.get_call(call.id)
        assert fresh is not None
        return fresh

    async def end(self, call: Call, event: CallEvent,
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
                self.stop_ringing(call.id)
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
        self.stop_ringing(call.id)
        if moved is None:
            return None
        hangup = s.CallHangup(call_id=call.id, conversation_id=call.conversation_id,
                              from_user_id=None, reason="timeout")
        self._events.to_user(call.caller_id, hangup)
        self._events.to_user(call.callee_id, hangup)
        log.info("call.ended", call_id=call.id, conversation_id=call.conversation_id,
                 end_reason=EndReason.TIMEOUT.value, was=CallState.RINGING.value)
        return moved

    def ring(self, call_id: str) -> None:
        """Start the ring timer of a call this instance placed."""
        loop = asyncio.get_running_loop()
        self._timers[call_id] = loop.call_later(self._ring_timeout, self._ring_timed_out,
                                                call_id)

    def stop_ringing(self, call_id: str) -> None:
        """Cancel the call's ring timer, if this instance holds one."""
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
