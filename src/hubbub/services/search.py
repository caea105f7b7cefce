"""SearchMessages (PROTOCOL.md §3): a literal, case-insensitive substring of live messages."""

from __future__ import annotations

from hubbub.domain.models import SearchPage
from hubbub.services.access import Access
from hubbub.services.context import Actor
from hubbub.storage.search import SearchStore


class SearchService:
    def __init__(self, search: SearchStore, access: Access) -> None:
        self._search = search
        self._access = access

    async def search(self, actor: Actor, query: str, conversation_id: str | None,
                     limit: int) -> SearchPage:
        """Newest first, in one conversation the actor may read, or in the conversations
        the actor is a member of and may read (a channel not joined is searched by id).

        Access is checked up front for one conversation, and inside the query for the
        memberships, so no conversation the actor cannot read ever contributes a result.

        Raises:
            NotFound, Forbidden: for `conversation_id` (unknown, or not readable).
            RateLimited: the instance's searches are all busy for a moment.
        """
        if conversation_id is not None:
            await self._access.require_readable(actor, conversation_id)
        return await self._search.search(actor.user_id, query, conversation_id, limit)
