"""Calls (PROTOCOL.md §3) and their state (domain/calls.py), where every instance sees them."""

from __future__ import annotations

from typing import Protocol

from hubbub.domain.calls import Call, CallState, EndReason


class CallStore(Protocol):
    """The calls of PROTOCOL.md §3 and their state (domain/calls.py), where every instance
    sees them. State changes are conditional writes, so concurrent instances never both
    win a transition."""

    async def create_call(self, call: Call) -> bool:
        """Insert a new call; False (and nothing written) when its id is taken."""

    async def get_call(self, call_id: str) -> Call | None: ...

    async def transition(self, call_id: str, expected: CallState, target: CallState,
                         now: int, end_reason: EndReason | None = None,
                         connection_id: str | None = None) -> Call | None:
        """Move the call from `expected` to `target`, stamping `answered_at` and the
        answering `connection_id`, or `ended_at` and `end_reason`; None when it was not in
        `expected` (someone else moved it)."""

    async def open_calls_of(self, user_id: str) -> list[Call]:
        """The ringing and active calls the user is a party of."""

    async def ringing_before(self, created_before: int, limit: int) -> list[Call]:
        """Ringing calls created before that time, oldest first (left behind by a stopped
        instance, whose ring timer never fired)."""

    async def open_calls(self, after: tuple[int, str] | None, limit: int) -> list[Call]:
        """Ringing and active calls ordered by (created_at, id), from just after `after`:
        pages over every open call."""

    async def list_calls(self, conversation_id: str, user_id: str, before: int | None,
                         limit: int) -> list[Call]:
        """The conversation's calls the user was a party of, created before `before`,
        newest first."""
