"""Open WebSocket connections per user (PROTOCOL.md §6), behind a small seam.

The count must hold across every instance, so a multi-instance deployment needs a shared
implementation (Redis); the memory one counts this process only. `acquire` is check-and-add
in one step, so two handshakes racing for the last slot cannot both get it.
"""

from __future__ import annotations

from typing import Protocol


class ConnectionLimiter(Protocol):
    async def acquire(self, user_id: str, limit: int) -> bool:
        """Count one more open connection of `user_id` unless `limit` are open already.

        Returns True when the connection was counted (the caller must `release` it later).
        """

    async def release(self, user_id: str) -> None:
        """Forget one counted connection of `user_id` (when it closes)."""

    async def close(self) -> None: ...


class MemoryConnectionLimiter:
    """Counts the connections of this process (the single-instance default)."""

    def __init__(self) -> None:
        self._open: dict[str, int] = {}

    async def acquire(self, user_id: str, limit: int) -> bool:
        count = self._open.get(user_id, 0)
        if count >= limit:
            return False
        self._open[user_id] = count + 1
        return True

    async def release(self, user_id: str) -> None:
        count = self._open.get(user_id, 0) - 1
        if count > 0:
            self._open[user_id] = count
        else:
            self._open.pop(user_id, None)

    def open_count(self, user_id: str) -> int:
        """How many connections of `user_id` are counted now (for tests and metrics)."""
        return self._open.get(user_id, 0)

    async def close(self) -> None:
        return None


class NoConnectionLimit:
    """`HUBBUB_RATE_LIMITS=off`: every connection is admitted (load tests only)."""

    async def acquire(self, user_id: str, limit: int) -> bool:
        return True

    async def release(self, user_id: str) -> None:
        return None

    async def close(self) -> None:
        return None
