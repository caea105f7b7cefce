"""Presence (PROTOCOL.md §4): online on a user's first connection, offline on its last,
counted across every instance.

A user's presence is shown only through the conversations the user has accepted (joined,
sent to, created: docs/DECISIONS.md, "Consent"): being added by someone else does not let
them watch it.

The counting lives behind the `PresenceCounter` seam (coordination/presence.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from hubbub.coordination.presence import PresenceCounter
from hubbub.domain.clock import format_optional
from hubbub.domain.models import Member
from hubbub.protocol.server import PresenceChanged
from hubbub.services.context import Clock, now_micros
from hubbub.services.events import Events
from hubbub.storage.members import MemberStore
from hubbub.storage.users import UserStore

OfflineListener = Callable[[str], Awaitable[None]]


class PresenceService:
    """Announces presence changes to the conversations a user belongs to."""

    def __init__(self, users: UserStore, members: MemberStore, events: Events,
                 counter: PresenceCounter, *, clock: Clock = now_micros) -> None:
        self._users = users
        self._members = members
        self._events = events
        self._clock = clock
        self._counter = counter
        self._offline_listeners: list[OfflineListener] = []

    def on_offline(self, listener: OfflineListener) -> None:
        """Call `listener(user_id)` when a user's last connection anywhere closes."""
        self._offline_listeners.append(listener)

    async def connection_opened(self, user_id: str) -> None:
        if await self._counter.connected(user_id):
            await self._announce(user_id, "online", None)

    async def connection_closed(self, user_id: str) -> None:
        if await self._counter.disconnected(user_id):
            await self.went_offline(user_id)

    async def went_offline(self, user_id: str) -> None:
        """The user's last connection anywhere is gone: closed here, or lost with a crashed
        instance (the Redis counter reports those)."""
        now = self._clock()
        await self._users.touch_user(user_id, now)
        await self._announce(user_id, "offline", now)
        for listener in self._offline_listeners:
            await listener(user_id)

    async def back_online(self, user_id: str) -> None:
        """The other instances had reported the user offline while this one was cut off
        from them; its connection is counted again."""
        await self._announce(user_id, "online", None)

    async def online(self, user_ids: list[str]) -> set[str]:
        """Which of these users are connected anywhere (for the server's own decisions;
        what members may see of each other is `visible_online`)."""
        return await self._counter.online(user_ids)

    async def visible_online(self, members: list[Member]) -> set[str]:
        """The ids of these members of one conversation whom its members may see online:
        connected, and the conversation accepted."""
        return await self._counter.online([m.user_id for m in members if m.accepted])

    async def accepted(self, conversation_id: str, user_id: str) -> None:
        """The user has just accepted the conversation: its subscribers, who saw nothing of
        the user's presence until now, learn that the user is online (if so). The user's
        own connections are left out: nobody hears their own presence."""
        if await self._counter.online([user_id]):
            self._events.to_conversation(conversation_id, _changed(user_id, "online"),
                                         exclude_user=user_id)

    async def _announce(self, user_id: str, status: str, last_seen: int | None) -> None:
        event = _changed(user_id, status, last_seen)
        for conversation_id in await self._members.accepted_conversation_ids(user_id):
            self._events.to_conversation(conversation_id, event)


def _changed(user_id: str, status: str, last_seen: int | None = None) -> PresenceChanged:
    return PresenceChanged(user_id=user_id, status="online" if status == "online"
                           else "offline", last_seen=format_optional(last_seen))
