"""Open connections per user counted in this process (PROTOCOL.md §6): the
single-instance `ConnectionLimiter`."""

from __future__ import annotations


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
