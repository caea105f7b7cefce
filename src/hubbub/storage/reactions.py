"""Reactions (PROTOCOL.md §3): one per (message, user, emoji), within the caps of
domain/reactions.py."""

from __future__ import annotations

from typing import Protocol

from hubbub.domain.models import ReactionChange


class ReactionStore(Protocol):
    """All times are UTC microseconds."""

    async def add_reaction(self, message_id: str, user_id: str, emoji: str,
                           now: int) -> ReactionChange:
        """Add one reaction under the conversation's next version; a no-op if present.

        Raises:
            NotFound: unknown message; Conflict: the message is deleted, or the reaction
            would pass a cap of domain/reactions.py (counted in the same transaction).
        """

    async def remove_reaction(self, message_id: str, user_id: str, emoji: str,
                              now: int) -> ReactionChange:
        """Remove one reaction under the conversation's next version; a no-op if absent.

        Raises:
            NotFound: unknown message; Conflict: the message is deleted.
        """
