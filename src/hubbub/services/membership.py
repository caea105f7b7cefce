"""Memberships (role, accepted) cached per (conversation, user), so the hot path never
queries for permission.

The cache is invalidated by `MembershipChanged` control events from the bus, which every
instance hears — including the one that made the change.
"""

from __future__ import annotations

import asyncio

from hubbub.bus.envelope import ControlEvent
from hubbub.domain.models import Membership
from hubbub.protocol.objects import Role
from hubbub.storage.members import MemberStore

# A bound on memory; an evicted entry only costs one query to bring back.
MAX_ENTRIES = 200_000
# Cached for a non-member, so that a miss is told apart from "not a member".
_ABSENT = Membership("banned", False)


class MembershipCache:
    """`membership(conversation, user)` with one query per miss, shared by concurrent
    callers."""

    def __init__(self, members: MemberStore) -> None:
        self._members = members
        self._entries: dict[tuple[str, str], Membership] = {}
        self._loading: dict[tuple[str, str], asyncio.Future[Membership]] = {}
        # Bumped by every invalidation: a load that raced one must not cache its answer.
        self._generation = 0

    async def membership(self, conversation_id: str, user_id: str) -> Membership | None:
        key = (conversation_id, user_id)
        cached = self._entries.get(key)
        if cached is None:
            cached = await self._load(key)
        return None if cached is _ABSENT else cached

    async def role(self, conversation_id: str, user_id: str) -> Role | None:
        membership = await self.membership(conversation_id, user_id)
        return None if membership is None else membership.role

    def forget(self, conversation_id: str, user_id: str) -> None:
        self._generation += 1
        self._entries.pop((conversation_id, user_id), None)
        self._loading.pop((conversation_id, user_id), None)

    def clear(self) -> None:
        """Forget every role: invalidations may have been lost (the bus was down)."""
        self._generation += 1
        self._entries.clear()
        self._loading.clear()

    def on_control(self, event: ControlEvent) -> None:
        """Bus listener: a membership changed somewhere."""
        self.forget(event.conversation_id, event.user_id)

    async def _load(self, key: tuple[str, str]) -> Membership:
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Membership] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        generation = self._generation
        try:
            found = await self._members.get_membership(*key)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: concurrent waiters re-raise it themselves
            raise
        finally:
            if self._loading.get(key) is future:
                del self._loading[key]
        value = found if found is not None else _ABSENT
        if generation == self._generation:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = value
        future.set_result(value)
        return value
