"""Permission checks shared by the conversation-feature services (PROTOCOL.md §5).

Roles come from the membership cache, so a check costs no query on the hot path; the
conversation is looked up only for a non-member, to tell NOT_FOUND from FORBIDDEN and to
let anyone read a public channel.
"""

from __future__ import annotations

from hubbub.domain.errors import NotFound
from hubbub.domain.permissions import Ability, require, require_read
from hubbub.protocol.objects import Role
from hubbub.services.context import Actor, ServiceContext


async def require_readable(ctx: ServiceContext, actor: Actor,
                           conversation_id: str) -> Role | None:
    """The actor's role (None: a non-member reading a public channel).

    Raises:
        NotFound: unknown conversation; Forbidden: the actor may not read it.
    """
    role = await ctx.members.role(conversation_id, actor.user_id)
    if role is not None:
        require_read("group", role)
        return role
    conversation = await ctx.store.get_conversation(conversation_id)
    if conversation is None:
        raise NotFound("unknown conversation - at `$.conversation_id`")
    require_read(conversation.kind, None)
    return None


async def require_ability(ctx: ServiceContext, actor: Actor, conversation_id: str,
                          ability: Ability, *, what: str) -> Role:
    """The actor's role, which has `ability`.

    Raises:
        NotFound: unknown conversation; Forbidden: not a member, or the role lacks it.
    """
    role = await ctx.members.role(conversation_id, actor.user_id)
    if role is None and await ctx.store.get_conversation(conversation_id) is None:
        raise NotFound("unknown conversation - at `$.conversation_id`")
    require(role, ability, what=what)
    assert role is not None
    return role
