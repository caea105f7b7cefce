"""The presence seam (PROTOCOL.md §4): each user's connections, counted across every
instance — in process memory for one instance, in Redis (per-instance heartbeat keys with
a TTL, so a crashed instance's users go offline) for many."""

from __future__ import annotations

from typing import Protocol


class PresenceCounter(Protocol):
    async def connected(self, user_id: str) -> bool:
        """Count one more connection; True when it is the user's first anywhere."""

    async def disconnected(self, user_id: str) -> bool:
        """Count one connection less; True when it was the user's last anywhere."""

    async def online(self, user_ids: list[str]) -> set[str]:
        """Which of these users have a connection anywhere."""

    async def close(self) -> None: ...
