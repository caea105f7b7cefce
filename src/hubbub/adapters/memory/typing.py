"""Typing states of this process (PROTOCOL.md §3): the single-instance `TypingStates`, and
the Redis one's fallback."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hubbub.coordination.typing import Key


@dataclass(slots=True)
class _Shared:
    deadline: float
    connections: set[str] = field(default_factory=set)


class MemoryTypingStates:
    """Typing states of this process (the single-instance default)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._states: dict[Key, _Shared] = {}

    def __contains__(self, key: Key) -> bool:
        return key in self._states

    async def start(self, key: Key, connection_id: str, timeout_s: float) -> bool:
        deadline = self._clock() + timeout_s
        state = self._states.get(key)
        started = state is None
        if state is None:
            state = self._states[key] = _Shared(deadline)
        state.deadline = deadline
        state.connections.add(connection_id)
        return started

    async def stop(self, key: Key) -> bool:
        return self._states.pop(key, None) is not None

    async def leave(self, key: Key, connection_id: str) -> bool:
        state = self._states.get(key)
        if state is None or connection_id not in state.connections:
            return False
        state.connections.discard(connection_id)
        if state.connections:
            return False
        del self._states[key]
        return True

    async def settle(self, key: Key) -> float | None:
        state = self._states.get(key)
        if state is None:
            return None
        left = state.deadline - self._clock()
        if left > 0:
            return left
        del self._states[key]
        return 0.0
