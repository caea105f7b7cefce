"""Dead-lettered webhook events: listing and replaying them (docs/WEBHOOKS.md).

The use cases behind `hubbub webhooks dead-letters` and `replay` and the server API's
`/webhooks/dead-letters` (PROTOCOL.md §8): an operator looks at what could not be
delivered within the retry window, fixes the receiver, and puts the events back in line.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from hubbub.domain.clock import format_time
from hubbub.domain.errors import BadRequest
from hubbub.services.context import Clock, now_micros
from hubbub.storage.outbox import OutboxRow, OutboxStore


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


class DeadLetterPage(msgspec.Struct, frozen=True):
    """One page of the listing; `next`: the cursor of the page after it (None: the last)."""

    dead_letters: list[DeadLetter]
    next: str | None


# The bounds of one page, and of one replay's ids (a request stays small).
MAX_PAGE = 500
MAX_REPLAY_IDS = 1000


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
        return [_letter(row) for row in await self._outbox.dead_letters(limit)]

    async def page(self, limit: int, cursor: str | None) -> DeadLetterPage:
        """At most `limit` (1–MAX_PAGE) dead events, oldest first, after `cursor` (the
        `next` of the page before; None: from the oldest).

        Raises:
            BadRequest: `limit` out of bounds, or a cursor this did not give.
        """
        if not 1 <= limit <= MAX_PAGE:
            raise BadRequest(f"limit must be 1-{MAX_PAGE} - at `limit`")
        after = 0
        if cursor is not None:
            if not cursor.isdigit() or len(cursor) > 19:
                raise BadRequest("not a cursor of this listing - at `cursor`")
            after = int(cursor)
        rows = await self._outbox.dead_letters(limit, after)
        more = str(rows[-1].seq) if len(rows) == limit else None
        return DeadLetterPage([_letter(row) for row in rows], more)

    async def replay(self, ids: Sequence[str] | None) -> int:
        """Make the dead events of `ids` (None: all) pending again, due now, with a whole
        retry window; how many were. Each goes out before the later events of its
        conversation that are still pending."""
        if ids is not None and not ids:
            raise BadRequest("name the events to replay, or replay all - at `ids`")
        if ids is not None and len(ids) > MAX_REPLAY_IDS:
            raise BadRequest(f"at most {MAX_REPLAY_IDS} ids at once - at `ids`")
        return await self._outbox.replay(ids, self._clock())


def _letter(row: OutboxRow) -> DeadLetter:
    return DeadLetter(row.id, row.type, row.conversation_id, row.version,
                      format_time(row.created_at), row.attempts, row.last_error)
