"""One client's WebSocket connection as the hub sees it."""

from __future__ import annotations

import time

from hubbub.transport.outbox import Outbox


class Connection:
    """Who is connected, where their frames go, and what they subscribed to."""

    __slots__ = ("conversations", "id", "last_seen", "outbox", "user_id", "user_name")

    def __init__(self, connection_id: str, user_id: str, user_name: str, outbox: Outbox) -> None:
        self.id = connection_id
        self.user_id = user_id
        self.user_name = user_name
        self.outbox = outbox
        self.conversations: set[str] = set()
        # Monotonic time of the last frame received; the heartbeat closes silent peers.
        self.last_seen = time.monotonic()
