"""Dead-lettered webhook events: listing and replaying them (docs/WEBHOOKS.md).

The use cases behind `hubbub webhooks dead-letters` and `replay` (and the server API that
will expose them): an operator looks at what could not be delivered within the retry
window, fixes the receiver, and puts the events back in line.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from hubbub.domain.clock import format_time
from hubbub.domain.errors import BadRequest
from hubbub.services.context import Clock, now_micros
from hubbub.storage.outbox import OutboxStore


class DeadLetter(msgspec.Struct, frozen=True):
    """A dead event as an operator sees it (its data stays in the store: it holds message
    content, which no listing or log shows)."""

    id: str
    type: str
    conversation_id: str
    version: int
    created_at: str
    attempts: int
    last_error: str | None


class DeadLetters:
    def __init__(self, outbox: OutboxStore, *, clock: Clock = now_micros) -> None:
        self._outbox = outbox
        self._clock = clock

    async def list(self, limit: int = 100) -> list[DeadLetter]:
        """The oldest `limit` dead events.

        Raises:
            BadRequest: `limit` below 1.
        """
        if limit < 1:
            raise BadRequest("limit must be at least 1 - at `limit`")
        return [DeadLetter(row.id, row.type, row.conversation_id, row.version,
                           format_time(row.created_at), row.attempts, row.last_error)
                for row in await self._outbox.dead_letters(limit)]

    async def replay(self, ids: Sequence[str] | None) -> int:
        """Make the dead events of `ids` (None: all) pending again, due now, with a whole
        retry window; how many were. Each goes out before the later events of its
        conversation that are still pending."""
        if ids is not None and not ids:
            raise BadRequest("name the events to replay, or replay all - at `ids`")
        return await self._outbox.replay(ids, self._clock())
