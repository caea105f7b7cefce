"""Connections per user counted in this process (PROTOCOL.md §4): the single-instance
`PresenceCounter`."""

from __future__ import annotations


class MemoryPresenceCounter:
    """Connection counts of this process (the single-instance default)."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    async def connected(self, user_id: str) -> bool:
        self._counts[user_id] = self._counts.get(user_id, 0) + 1
        return self._counts[user_id] == 1

    async def disconnected(self, user_id: str) -> bool:
        count = self._counts.get(user_id, 0) - 1
        if count > 0:
            self._counts[user_id] = count
            return False
        self._counts.pop(user_id, None)
        return count == 0

    async def online(self, user_ids: list[str]) -> set[str]:
        return {uid for uid in user_ids if uid in self._counts}

    async def close(self) -> None:
        return None
