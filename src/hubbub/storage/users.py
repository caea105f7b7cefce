"""Users as hubbub knows them: created on first sight, with a display name and last seen."""

from __future__ import annotations

from typing import Protocol

from hubbub.domain.models import User


class UserStore(Protocol):
    """All times are UTC microseconds."""

    async def upsert_user(self, user_id: str, name: str | None, now: int) -> User:
        """Create the user on first sight; refresh the display name when one is given."""

    async def ensure_users(self, user_ids: list[str], now: int) -> None:
        """Make a row for each user not known yet (a member added before it ever
        connected): a placeholder name, no `last_seen`. Known users are left alone."""

    async def touch_user(self, user_id: str, now: int) -> None:
        """Record `last_seen`."""

    async def get_user(self, user_id: str) -> User | None: ...
