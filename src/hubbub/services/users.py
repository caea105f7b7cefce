"""Users as hubbub knows them: created on the first valid token, named by its `name` claim."""

from __future__ import annotations

from hubbub.domain.errors import Unauthorized
from hubbub.domain.models import User
from hubbub.domain.tokens import Identity
from hubbub.services.context import Clock, now_micros
from hubbub.storage.users import UserStore


class UserService:
    def __init__(self, users: UserStore, *, clock: Clock = now_micros) -> None:
        self._users = users
        self._clock = clock

    async def seen(self, identity: Identity) -> User:
        """Register or refresh the user a valid token speaks for.

        Raises:
            Unauthorized: the backend erased the user (server API) and has not re-created
            it: its tokens, however valid, are refused.
        """
        user = await self._users.upsert_user(identity.user_id, identity.name, self._clock())
        if user.erased:
            raise Unauthorized("user erased")
        return user

    async def get(self, user_id: str) -> User | None:
        return await self._users.get_user(user_id)
