"""SearchMessages (PROTOCOL.md §3): a literal, case-insensitive substring of live messages."""

from __future__ import annotations

from typing import Protocol

from hubbub.domain.models import SearchPage


class SearchStore(Protocol):
    async def search(self, user_id: str, query: str, conversation_id: str | None,
                     limit: int) -> SearchPage:
        """Live messages whose content contains `query` (case-insensitive; `%`, `_` and
        `\\` literal), newest first: in `conversation_id`, or when None in the user's
        readable memberships (the most recently active, up to a cap). Bounded in the
        messages it examines, its time and the searches running at once; a search stopped
        by a bound says so (`truncated`).

        Raises:
            RateLimited: every search slot stayed busy for a moment.
        """
