"""Permission checks shared by the conversation-feature services (PROTOCOL.md §5).

Roles come from the membership cache, so a check costs no query on the hot path; the
conversation is looked up only for a non-member, to tell NOT_FOUND from FORBIDDEN and to
let anyone read a public channel.
"""

from __future__ import annotations

from hubbub.domain.errors import unknown_conversation
from hubbub.domain.models import Conversation
from hubbub.domain.permissions import Ability, require, require_read
from hubbub.protocol.objects import Role
from hubbub.services.context import Actor
from hubbub.services.membership import MembershipCache
from hubbub.storage.conversations import ConversationStore


async def require_conversation(conversations: ConversationStore,
                               conversation_id: str) -> Conversation:
    """The conversation, or the one NOT_FOUND every request naming an unknown one gets."""
    conversation = await conversations.get_conversation(conversation_id)
    if conversation is None:
        raise unknown_conversation()
    return conversation


class Access:
    """The checks, on the role cache and the conversations."""

    def __init__(self, memberships: MembershipCache,
                 conversations: ConversationStore) -> None:
        self._memberships = memberships
        self._conversations = conversations

    async def require_readable(self, actor: Actor, conversation_id: str) -> Role | None:
        """The actor's role (None: a non-member reading a public channel).

        Raises:
            NotFound: unknown conversation; Forbidden: the actor may not read it.
        """
        role = await self._memberships.role(conversation_id, actor.user_id)
        if role is not None:
            require_read("group", role)
            return role
        conversation = await require_conversation(self._conversations, conversation_id)
        require_read(conversation.kind, None)
        return None

    async def require_ability(self, actor: Actor, conversation_id: str, ability: Ability, *,
                              what: str) -> Role:
        """The actor's role, which has `ability`.

        Raises:
            NotFound: unknown conversation; Forbidden: not a member, or the role lacks it.
        """
        role = await self._memberships.role(conversation_id, actor.user_id)
        if role is None:
            await require_conversation(self._conversations, conversation_id)
        require(role, ability, what=what)
        assert role is not None
        return role
