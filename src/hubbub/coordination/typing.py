"""The typing-state seam (PROTOCOL.md §3): the typing states of a deployment, each
transition decided in one atomic step, so every start and end is announced once, by one
instance (services/typing.py has the rules)."""

from __future__ import annotations

from typing import Protocol

Key = tuple[str, str]  # (conversation_id, user_id)


class TypingStates(Protocol):
    """The typing states of a deployment. Each call is one atomic step, and its result says
    whether this call made the transition that must be announced."""

    async def start(self, key: Key, connection_id: str, timeout_s: float) -> bool:
        """Start or refresh the state, held by `connection_id`, until `timeout_s` from now.
        True when it started (it was not on)."""

    async def stop(self, key: Key) -> bool:
        """End the state; True when this call ended it."""

    async def leave(self, key: Key, connection_id: str) -> bool:
        """`connection_id` closed; True when this ended the state (no holder left)."""

    async def settle(self, key: Key) -> float | None:
        """End the state (one this instance started) if its deadline has passed. Returns
        the seconds left until the deadline, 0.0 when this call ended it (and so must
        announce it; also when the state was lost and nobody announced its end), None when
        it had been ended, and announced, already."""
