"""Consent to being seen (docs/DECISIONS.md, "Consent").

Anyone who may manage a group can add any known user to it, and a direct conversation can
be opened with anyone. Such a membership starts unaccepted, and the user's presence is not
shown through it. It becomes accepted when the user takes part: joins the conversation
(`JoinConversation`) or sends to it (`SendMessage`, WebSocket or REST), or opens the same
direct conversation themselves. Creating a conversation or joining a channel by oneself is
accepted from the start (storage).
"""

from __future__ import annotations

from hubbub.domain.models import Membership
from hubbub.services.context import Actor, Clock, now_micros
from hubbub.services.events import Events
from hubbub.services.membership import MembershipCache
from hubbub.services.presence import PresenceService
from hubbub.storage.members import MemberStore


class Consent:
    """Accepts memberships on their users' own actions."""

    def __init__(self, members: MemberStore, memberships: MembershipCache, events: Events,
                 presence: PresenceService, *, clock: Clock = now_micros) -> None:
        self._members = members
        self._memberships = memberships
        self._events = events
        self._clock = clock
        self._presence = presence

    async def took_part(self, actor: Actor, conversation_id: str,
                        membership: Membership | None) -> None:
        """The actor acted in the conversation themselves, with `membership` as the role
        cache had it: accept it if it was not yet. Costs nothing once accepted."""
        if membership is None or membership.accepted:
            return
        now = self._clock()
        if not await self._members.accept_membership(conversation_id, actor.user_id, now):
            return  # accepted meanwhile (another device), or ended
        self._memberships.forget(conversation_id, actor.user_id)
        # Every instance's cache forgets the unaccepted entry (the role itself is unchanged).
        self._events.membership_changed(conversation_id, actor.user_id, membership.role)
        await self._presence.accepted(conversation_id, actor.user_id)
