"""One client's WebSocket connection as the hub sees it."""

from __future__ import annotations

import time
from collections.abc import Set

from hubbub.delivery.outbox import Outbox

_NONE: frozenset[str] = frozenset()


class Connection:
    """Who is connected, where their frames go, and what they subscribed to."""

    __slots__ = ("_conversations", "id", "last_seen", "outbox", "user_id", "user_name")

    def __init__(self, connection_id: str, user_id: str, user_name: str, outbox: Outbox) -> None:
        self.id = connection_id
        self.user_id = user_id
        self.user_name = user_name
        self.outbox = outbox
        # Made on the first join: most connections idle, and an empty set costs 216 bytes.
        self._conversations: set[str] | None = None
        # Monotonic time of the last frame received; the heartbeat closes silent peers.
        self.last_seen = time.monotonic()

    @property
    def conversations(self) -> Set[str]:
        """The conversations this connection is subscribed to (read-only view)."""
        return self._conversations or _NONE

    def subscribed(self, conversation_id: str) -> None:
        """Record a subscription (the hub keeps the other side)."""
        if self._conversations is None:
            self._conversations = set()
        self._conversations.add(conversation_id)

    def unsubscribed(self, conversation_id: str) -> None:
        """Forget a subscription (idempotent)."""
        if self._conversations is not None:
            self._conversations.discard(conversation_id)
            if not self._conversations:
                self._conversations = None
