"""Users as hubbub knows them: created on the first valid token, named by its `name` claim."""

from __future__ import annotations

from hubbub.domain.models import User
from hubbub.domain.tokens import Identity
from hubbub.services.context import ServiceContext


class UserService:
    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    async def seen(self, identity: Identity) -> User:
        """Register or refresh the user a valid token speaks for."""
        return await self._ctx.store.upsert_user(identity.user_id, identity.name,
                                                 self._ctx.clock())

    async def get(self, user_id: str) -> User | None:
        return await self._ctx.store.get_user(user_id)
