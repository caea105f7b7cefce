"""Typing indicators (PROTOCOL.md §3): `Typing` → `UserTyping` to the other subscribers.

Rules:
- The state is kept per (conversation, user), whichever connections and instances the user
  types through. `is_typing:true` starts it (broadcast) or refreshes it (nothing broadcast:
  only transitions travel, so a typist refreshing every few seconds costs the room nothing).
- `is_typing:false` from any of the user's connections ends it (broadcast).
- A state not refreshed for `timeout_s` ends (broadcast `is_typing:false`).
- A connection that closes leaves every state it refreshed; a state no open connection
  holds any more ends at once (broadcast).

The shared state sits behind the `TypingStates` seam (coordination/typing.py) — this
process's memory, or Redis where several instances serve one deployment — and every
transition is decided there atomically, so each start and each end is announced once, by
one instance. Expiry needs a clock that
fires: every instance holding a connection that refreshed a state keeps one timer for it
(one per typing user and conversation, whatever the number of recipients). A refresh only
moves the local deadline; when it passes, the instance asks the store, which ends the state
if its shared deadline has passed too, or tells how long is left.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from hubbub.coordination.typing import Key, TypingStates
from hubbub.domain.permissions import Ability
from hubbub.logs import get_logger
from hubbub.protocol.server import UserTyping
from hubbub.services.access import Access
from hubbub.services.context import Actor
from hubbub.services.events import Events

log = get_logger("hubbub.typing")

# Clients refresh while typing every few seconds; an indicator silent for 6 s is stale.
DEFAULT_TIMEOUT_S = 6.0


@dataclass(slots=True)
class _Held:
    """This instance's part in a typing state: its connections that refreshed the state,
    and the timer that fires at the latest local deadline."""

    user_name: str
    deadline: float
    connections: set[str] = field(default_factory=set)
    timer: asyncio.TimerHandle | None = None


class TypingService:
    def __init__(self, access: Access, events: Events, states: TypingStates,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._access = access
        self._events = events
        self._states = states
        self._timeout = timeout_s
        self._held: dict[Key, _Held] = {}
        self._by_connection: dict[str, set[Key]] = {}
        self._settling: set[asyncio.Task[None]] = set()

    @property
    def active(self) -> int:
        """How many (conversation, user) typing states this instance holds (tests, metrics)."""
        return len(self._held)

    async def update(self, actor: Actor, connection_id: str, conversation_id: str,
                     is_typing: bool) -> None:
        """Start, refresh or end the actor's typing state in a conversation.

        Raises:
            NotFound: unknown conversation; Forbidden: the actor may not send there.
        """
        await self._access.require_ability(actor, conversation_id, Ability.SEND, what="type")
        key = (conversation_id, actor.user_id)
        if is_typing:
            self._hold(key, actor.name, connection_id)
            if await self._states.start(key, connection_id, self._timeout):
                self._announce(key, actor.name, True)
        else:
            held = self._release(key)
            if await self._states.stop(key):
                self._announce(key, held.user_name if held else actor.name, False)

    async def connection_closed(self, connection_id: str) -> None:
        """End the typing a closing connection held, where no other connection holds it
        (idempotent)."""
        for key in self._by_connection.pop(connection_id, ()):
            held = self._held.get(key)
            if held is None:
                continue
            held.connections.discard(connection_id)
            if not held.connections:
                self._release(key)
            if await self._states.leave(key, connection_id):
                self._announce(key, held.user_name, False)

    async def close(self) -> None:
        """Cancel every timer (server shutdown); nothing is broadcast."""
        for held in self._held.values():
            if held.timer is not None:
                held.timer.cancel()
        self._held.clear()
        self._by_connection.clear()
        for task in list(self._settling):
            task.cancel()
        if self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)

    def _hold(self, key: Key, user_name: str, connection_id: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        held = self._held.get(key)
        if held is None:
            held = self._held[key] = _Held(user_name, deadline)
            held.timer = loop.call_at(deadline, self._due, key)
        else:
            held.deadline = deadline
        held.connections.add(connection_id)
        self._by_connection.setdefault(connection_id, set()).add(key)

    def _release(self, key: Key) -> _Held | None:
        """Forget this instance's part in a state (its timer, its connections' claims)."""
        held = self._held.pop(key, None)
        if held is None:
            return None
        if held.timer is not None:
            held.timer.cancel()
        for connection_id in held.connections:
            keys = self._by_connection.get(connection_id)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_connection[connection_id]
        return held

    def _due(self, key: Key) -> None:
        """The timer fired: re-arm if a local refresh moved the deadline, else settle."""
        held = self._held.get(key)
        if held is None:
            return
        loop = asyncio.get_running_loop()
        held.timer = None
        if loop.time() < held.deadline:
            held.timer = loop.call_at(held.deadline, self._due, key)
            return
        task = loop.create_task(self._settle(key, held))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def _settle(self, key: Key, held: _Held) -> None:
        try:
            left = await self._states.settle(key)
        except Exception:  # an adapter that failed: end the state rather than keep it
            log.exception("typing.settle_failed")
            left = 0.0
        if left == 0.0:
            self._announce(key, held.user_name, False)
        if self._held.get(key) is not held:
            return  # released or replaced meanwhile: whoever did that owns the state now
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now < held.deadline:
            # Refreshed here while the store was asked: that refresh reached the store
            # after this settle (one queue, in call order), so it holds the state now.
            held.timer = loop.call_at(held.deadline, self._due, key)
        elif left is None or left == 0.0:
            self._release(key)
        else:  # refreshed through another instance: wait for the shared deadline
            held.deadline = now + left
            held.timer = loop.call_at(held.deadline, self._due, key)

    def _announce(self, key: Key, user_name: str, is_typing: bool) -> None:
        conversation_id, user_id = key
        self._events.to_conversation(conversation_id, UserTyping(
            conversation_id=conversation_id, user_id=user_id, user_name=user_name,
            is_typing=is_typing,
        ), exclude_user=user_id)
