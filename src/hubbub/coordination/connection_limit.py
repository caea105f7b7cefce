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
