"""The database as a whole, behind every store: whether it answers, and letting it go."""

from __future__ import annotations

from typing import Protocol


class Database(Protocol):
    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers a trivial query."""

    async def close(self) -> None:
        """Let queued writes finish, then give every connection back."""
