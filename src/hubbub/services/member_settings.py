"""A member's own settings of a conversation: muted and pinned (PROTOCOL.md §3
`UpdateMembership`, §7 `PATCH /conversations/{id}/membership`).

They are the member's, not the conversation's: nobody else sees them and no conversation
event carries them. The caller's other connections hear `MembershipUpdated`, so every
device shows the same list; the summary (`ConversationService.summary`) carries them with
the member's read mark, so a reload shows them too.
"""

from __future__ import annotations

from hubbub.domain.errors import BadRequest, Forbidden
from hubbub.domain.models import ConversationSummary
from hubbub.protocol.server import MembershipUpdated
from hubbub.services.access import require_conversation
from hubbub.services.context import Actor
from hubbub.services.events import Events
from hubbub.services.membership import MembershipCache
from hubbub.storage.conversations import ConversationStore
from hubbub.storage.members import MemberStore


class MemberSettings:
    def __init__(self, members: MemberStore, conversations: ConversationStore,
                 memberships: MembershipCache, events: Events) -> None:
        self._members = members
        self._conversations = conversations
        self._memberships = memberships
        self._events = events

    async def update(self, actor: Actor, conversation_id: str, muted: bool | None,
                     pinned: bool | None, *, connection_id: str | None = None
                     ) -> ConversationSummary:
        """Set the caller's `muted` and/or `pinned` (None: unchanged); the caller's summary
        after it. A banned member has no settings to change (it is no longer listed).

        Raises:
            BadRequest: neither is given; NotFound: unknown conversation;
            Forbidden: the caller is not a member (or is banned).
        """
        if muted is None and pinned is None:
            raise BadRequest("give `muted` or `pinned` - at `$.muted`")
        role = await self._memberships.role(conversation_id, actor.user_id)
        if role is None:
            await require_conversation(self._conversations, conversation_id)
        if role is None or role == "banned":
            raise Forbidden("only a member has settings of this conversation")
        if not await self._members.update_settings(conversation_id, actor.user_id,
                                                   muted, pinned):
            raise Forbidden("only a member has settings of this conversation")
        found = await self._conversations.list_conversations(actor.user_id, conversation_id)
        if not found:
            raise Forbidden("only a member has settings of this conversation")
        summary = found[0]
        self._events.to_user(actor.user_id, MembershipUpdated(
            conversation_id=conversation_id, muted=summary.muted, pinned=summary.pinned,
        ), exclude_connection=connection_id)
        return summary
