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
from hubbub.services.context import Actor, ServiceContext
from hubbub.services.presence import PresenceService


class Consent:
    """Accepts memberships on their users' own actions."""

    def __init__(self, ctx: ServiceContext, presence: PresenceService) -> None:
        self._ctx = ctx
        self._presence = presence

    async def took_part(self, actor: Actor, conversation_id: str,
                        membership: Membership | None) -> None:
        """The actor acted in the conversation themselves, with `membership` as the role
        cache had it: accept it if it was not yet. Costs nothing once accepted."""
        if membership is None or membership.accepted:
            return
        now = self._ctx.clock()
        if not await self._ctx.store.accept_membership(conversation_id, actor.user_id, now):
            return  # accepted meanwhile (another device), or ended
        self._ctx.members.forget(conversation_id, actor.user_id)
        # Every instance's cache forgets the unaccepted entry (the role itself is unchanged).
        self._ctx.events.membership_changed(conversation_id, actor.user_id, membership.role)
        await self._presence.accepted(conversation_id, actor.user_id)
