"""Typing indicators (PROTOCOL.md §3): `Typing` → `UserTyping` to the other subscribers.

State lives in the memory of the instance the typist is connected to; nothing is stored.
(A user typing through connections on two instances has a state on each.)

Rules:
- The state is kept per (conversation, user). `is_typing:true` starts it (broadcast) or
  refreshes it (nothing broadcast: only transitions travel, so a typist refreshing every
  few seconds costs the room nothing).
- `is_typing:false` from any of the user's connections ends it (broadcast).
- A state not refreshed for `timeout_s` ends (broadcast `is_typing:false`).
- A connection that closes leaves every state it refreshed; a state no open connection
  holds any more ends at once (broadcast).
- One timer per typing user and conversation, whatever the number of recipients; a refresh
  only moves a deadline, and the timer re-arms itself lazily when it fires early.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from hubbub.domain.permissions import Ability
from hubbub.protocol.server import UserTyping
from hubbub.services.access import require_ability
from hubbub.services.context import Actor, ServiceContext

# Clients refresh while typing every few seconds; an indicator silent for 6 s is stale.
DEFAULT_TIMEOUT_S = 6.0

Key = tuple[str, str]  # (conversation_id, user_id)


@dataclass(slots=True)
class _State:
    user_name: str
    deadline: float
    timer: asyncio.TimerHandle | None = None
    connections: set[str] = field(default_factory=set)


class TypingService:
    def __init__(self, ctx: ServiceContext, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._ctx = ctx
        self._timeout = timeout_s
        self._states: dict[Key, _State] = {}
        self._by_connection: dict[str, set[Key]] = {}

    @property
    def active(self) -> int:
        """How many (conversation, user) typing states are open (for tests and metrics)."""
        return len(self._states)

    async def update(self, actor: Actor, connection_id: str, conversation_id: str,
                     is_typing: bool) -> None:
        """Start, refresh or end the actor's typing state in a conversation.

        Raises:
            NotFound: unknown conversation; Forbidden: the actor may not send there.
        """
        await require_ability(self._ctx, actor, conversation_id, Ability.SEND, what="type")
        key = (conversation_id, actor.user_id)
        if is_typing:
            self._start(key, actor.name, connection_id)
        else:
            self._end(key)

    def connection_closed(self, connection_id: str) -> None:
        """End the typing a closing connection held (idempotent)."""
        for key in self._by_connection.pop(connection_id, ()):
            state = self._states.get(key)
            if state is None:
                continue
            state.connections.discard(connection_id)
            if not state.connections:
                self._end(key)

    def close(self) -> None:
        """Cancel every timer (server shutdown); nothing is broadcast."""
        for state in self._states.values():
            if state.timer is not None:
                state.timer.cancel()
        self._states.clear()
        self._by_connection.clear()

    def _start(self, key: Key, user_name: str, connection_id: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = _State(user_name, deadline)
            state.timer = loop.call_at(deadline, self._expire, key)
            self._announce(key, user_name, True)
        else:
            state.deadline = deadline
        state.connections.add(connection_id)
        self._by_connection.setdefault(connection_id, set()).add(key)

    def _expire(self, key: Key) -> None:
        state = self._states.get(key)
        if state is None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < state.deadline:
            state.timer = loop.call_at(state.deadline, self._expire, key)
            return
        state.timer = None
        self._end(key)

    def _end(self, key: Key) -> None:
        state = self._states.pop(key, None)
        if state is None:
            return
        if state.timer is not None:
            state.timer.cancel()
        for connection_id in state.connections:
            keys = self._by_connection.get(connection_id)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_connection[connection_id]
        self._announce(key, state.user_name, False)

    def _announce(self, key: Key, user_name: str, is_typing: bool) -> None:
        conversation_id, user_id = key
        self._ctx.events.to_conversation(conversation_id, UserTyping(
            conversation_id=conversation_id, user_id=user_id, user_name=user_name,
            is_typing=is_typing,
        ), exclude_user=user_id)
