"""The checks `message.undelivered` owes (services/undelivered.py), kept in the database so
that none is lost when an instance stops.

A send batch notes each conversation with new messages in the messages' own transaction
(one row per conversation: its first unchecked message and when its check is due). Any
instance's sweeper claims the due rows, reads the messages since, and finishes a check by
storing its events and removing the row — or moving it past what it checked, when more
messages committed meanwhile — in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from hubbub.storage.outbox import OutboxEvent


class OwedCheck(msgspec.Struct, frozen=True):
    """A conversation whose messages from `from_seq` on are unchecked, due at `due_at`."""

    conversation_id: str
    from_seq: int
    due_at: int


class Unchecked(msgspec.Struct, frozen=True):
    """What the check needs of one message (not its content)."""

    id: str
    seq: int  # also its version when it was created, the one its events carry
    sender_id: str
    mentions: tuple[str, ...]


class UndeliveredStore(Protocol):
    """All times are UTC microseconds. `owner` names one sweeper's claim (a lease)."""

    def owe_checks(self, grace: int) -> None:
        """From now on, note the new messages of every send as owed a check `grace` after
        the first of them (nothing is noted before this is called)."""

    async def claim(self, owner: str, now: int, lease_until: int,
                    limit: int) -> list[OwedCheck]:
        """Lease up to `limit` due checks no other sweeper holds, the oldest first. Safe to
        run on many instances at once."""

    async def unchecked(self, conversation_id: str, from_seq: int,
                        limit: int) -> list[Unchecked]:
        """The conversation's messages from `from_seq` on, in order, at most `limit`."""

    async def finish(self, owner: str, conversation_id: str, through_seq: int,
                     events: Sequence[OutboxEvent], grace: int) -> bool:
        """The check of the messages up to `through_seq` ran: store `events` and remove the
        conversation's row, or move it to the first later message (due `grace` after it),
        in one transaction. False, storing nothing, if `owner`'s lease was lost."""
