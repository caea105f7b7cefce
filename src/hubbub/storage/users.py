"""Users as hubbub knows them: created on first sight (a token, or the backend's server
API), with a display name, last seen, and what the backend set (avatar, metadata)."""

from __future__ import annotations

from typing import Protocol

from hubbub.domain.models import User


class UserStore(Protocol):
    """All times are UTC microseconds."""

    async def upsert_user(self, user_id: str, name: str | None, now: int) -> User:
        """Create the user on first sight; refresh the display name when one is given. An
        erased user is returned as it is (`erased`), unchanged: only `put_user` revives it."""

    async def ensure_users(self, user_ids: list[str], now: int) -> None:
        """Make a row for each user not known yet (a member added before it ever
        connected): a placeholder name, no `last_seen`. Known users are left alone."""

    async def touch_user(self, user_id: str, now: int) -> None:
        """Record `last_seen`."""

    async def get_user(self, user_id: str) -> User | None:
        """The user, or None when unknown or erased."""

    async def put_user(self, user_id: str, name: str | None, avatar_url: str | None,
                       metadata: str | None, now: int) -> tuple[User, bool]:
        """Create or replace what the backend sets (server API): `name` None keeps the
        name (or makes one up for a new user), `avatar_url` and `metadata` (JSON text) are
        set as given. Re-creates an erased user. True when the user is new (or was erased)."""

    async def erase_user(self, user_id: str, now: int) -> bool:
        """Forget the user's name, avatar and metadata and mark it erased (an erased user
        stays so, from its first erasure); False when the user is unknown."""
