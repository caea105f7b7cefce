"""The outbox: outgoing events stored in the transaction of the change they announce.

A service says which events a store call emits by wrapping the call in `emitting(builder)`;
the writer takes the builder when the call queues its job, runs it on the job's result
inside the same transaction and inserts what it returns (adapters/sql/writer.py). So a
change that commits has its events stored, and one rolled back has none — whatever crashes
after the commit. The store signatures stay as they are: the events ride along with the
call, not through every method.

The dispatcher (hubbub/webhooks/) claims stored events, delivers them, and marks each one
delivered (deleted), retried later, or dead: `OutboxStore` below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

import msgspec


class OutboxEvent(msgspec.Struct, frozen=True):
    """One event to store: its type (`message.created`), its conversation, the conversation
    version it carries (None: the conversation's version when it commits, for changes that
    take none, like memberships) and its `data` object encoded as JSON, without those two."""

    type: str
    conversation_id: str
    version: int | None
    data: bytes


class OutboxRow(msgspec.Struct, frozen=True):
    """A stored event, as the dispatcher claims it or a dead letter is listed."""

    seq: int
    id: str
    type: str
    conversation_id: str
    version: int
    data: bytes
    created_at: int
    attempts: int
    # Since when its retries count (created_at, or its last replay): past the retry
    # window after it, a failure makes it dead.
    retry_from: int
    last_error: str | None = None


class OutboxStats(msgspec.Struct, frozen=True):
    pending: int
    dead: int
    oldest_pending_at: int | None  # created_at (µs) of the oldest pending event


# The job result → the events it emits (none, e.g., for an idempotent retry).
EventBuilder = Callable[[Any], Sequence[OutboxEvent]]

_builder: ContextVar[EventBuilder | None] = ContextVar("hubbub_outbox_builder", default=None)


@contextmanager
def emitting(builder: EventBuilder) -> Iterator[None]:
    """The next write queued in this block emits `builder(result)` in its transaction."""
    token = _builder.set(builder)
    try:
        yield
    finally:
        _builder.reset(token)


def take_builder() -> EventBuilder | None:
    """The builder of the enclosing `emitting` block (for the writer, when a job is
    queued). Every store call queues exactly one write job, so it is not reset: that
    would cost a context change per send."""
    return _builder.get()


class OutboxStore(Protocol):
    """All times are UTC microseconds. `owner` names one dispatcher's claim (a lease)."""

    async def claim(self, owner: str, now: int, lease_until: int, limit: int,
                    run: int = 1, delivered: Sequence[int] = ()) -> list[OutboxRow]:
        """Lease the due events of up to `limit` conversations, for each its oldest pending
        event and the `run - 1` pending ones after it (so one dispatcher sends them one
        after another, in order), none leased by another dispatcher; ordered by `seq`.
        Safe to run on many instances at once. First, in the same write, delete the
        `delivered` events still leased by `owner` (as `delivered` does): the deletions
        of a round's runs cost one write with the next claim instead of one each."""

    async def delivered(self, owner: str, seqs: Sequence[int]) -> int:
        """Delete delivered events still leased by `owner`; how many were."""

    async def release(self, owner: str, seqs: Sequence[int]) -> None:
        """Give back leased events not attempted (the rest of a run that stopped)."""

    async def retry(self, owner: str, seq: int, next_attempt_at: int, error: str,
                    dead: bool) -> bool:
        """Record a failed attempt: due again at `next_attempt_at`, or dead (kept, listed,
        no longer blocking its conversation). False if the lease was lost meanwhile."""

    async def dead_letters(self, limit: int, after: int = 0) -> list[OutboxRow]:
        """Dead events, oldest first, from the one after `seq` `after` (a page's end)."""

    async def replay(self, ids: Sequence[str] | None, now: int) -> int:
        """Make dead events (those of `ids`, or all) pending again, due now, with a fresh
        retry budget; how many."""

    async def stats(self) -> OutboxStats: ...
