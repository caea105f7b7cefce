"""SyncMessages (PROTOCOL.md §3): every change after a version (or a time), in version order.

A message appears once, in its latest state (a tombstone if deleted), at its latest version:
a client that applies the pages in order and resumes with `last_version` ends with the
server's state, and paging never skips or repeats a change.
"""

from __future__ import annotations

from hubbub.domain.clock import parse_time
from hubbub.domain.errors import BadRequest
from hubbub.domain.models import SyncPage
from hubbub.services.access import Access
from hubbub.services.context import Actor
from hubbub.storage.messages import MessageStore


class SyncService:
    def __init__(self, messages: MessageStore, access: Access) -> None:
        self._messages = messages
        self._access = access

    async def sync(self, actor: Actor, conversation_id: str, since_version: int | None,
                   since: str | None, limit: int) -> SyncPage:
        """One page of changes; neither cursor means from the beginning.

        Raises:
            BadRequest: both cursors, or `since` is not RFC 3339;
            NotFound, Forbidden: unknown or unreadable conversation.
        """
        if since_version is not None and since is not None:
            raise BadRequest("give since_version or since, not both - at `$.since`")
        since_micros = None
        if since is not None:
            try:
                since_micros = parse_time(since)
            except ValueError:
                raise BadRequest("not an RFC 3339 date-time with an offset - at `$.since`"
                                 ) from None
        await self._access.require_readable(actor, conversation_id)
        return await self._messages.sync(conversation_id, since_version, since_micros, limit)
