"""AddReaction and RemoveReaction (PROTOCOL.md §3).

One reaction per (message, user, emoji). A real change takes the conversation's next
version, which becomes the message's `version` and is carried by the broadcast; adding a
present reaction or removing an absent one is a no-op: confirmed, nothing stored, nothing
broadcast, no version taken.
"""

from __future__ import annotations

from hubbub.domain.errors import BadRequest, Conflict, NotFound
from hubbub.domain.models import ReactionChange
from hubbub.domain.permissions import Ability
from hubbub.protocol.server import ReactionAdded, ReactionRemoved
from hubbub.services.access import Access
from hubbub.services.context import Actor, Clock, now_micros
from hubbub.services.events import Events
from hubbub.services.webhook_events import OFF, WebhookEvents, reaction
from hubbub.storage.messages import MessageStore
from hubbub.storage.reactions import ReactionStore


class ReactionService:
    def __init__(self, reactions: ReactionStore, messages: MessageStore, access: Access,
                 events: Events, *, clock: Clock = now_micros,
                 webhooks: WebhookEvents = OFF) -> None:
        self._reactions = reactions
        self._webhooks = webhooks
        self._messages = messages
        self._access = access
        self._events = events
        self._clock = clock

    async def add(self, actor: Actor, message_id: str, emoji: str) -> ReactionChange:
        """React to a live message; broadcasts `ReactionAdded` when it was not there yet.

        Raises:
            BadRequest: blank emoji; NotFound: unknown message;
            Forbidden: the actor may not send here; Conflict: the message is deleted.
        """
        await self._check(actor, message_id, emoji)
        with self._webhooks.emit(reaction("reaction.added", actor.user_id, emoji)):
            change = await self._reactions.add_reaction(message_id, actor.user_id, emoji,
                                                        self._clock())
        if change.changed:
            self._events.to_conversation(change.conversation_id, ReactionAdded(
                conversation_id=change.conversation_id, message_id=message_id,
                version=change.version, user_id=actor.user_id, emoji=emoji,
            ))
        return change

    async def remove(self, actor: Actor, message_id: str, emoji: str) -> ReactionChange:
        """Take one's reaction back; broadcasts `ReactionRemoved` when there was one.

        Raises:
            BadRequest, NotFound, Forbidden, Conflict: as for `add`.
        """
        await self._check(actor, message_id, emoji)
        with self._webhooks.emit(reaction("reaction.removed", actor.user_id, emoji)):
            change = await self._reactions.remove_reaction(message_id, actor.user_id, emoji,
                                                           self._clock())
        if change.changed:
            self._events.to_conversation(change.conversation_id, ReactionRemoved(
                conversation_id=change.conversation_id, message_id=message_id,
                version=change.version, user_id=actor.user_id, emoji=emoji,
            ))
        return change

    async def _check(self, actor: Actor, message_id: str, emoji: str) -> None:
        if not emoji.strip():
            raise BadRequest("emoji may not be blank - at `$.emoji`")
        message = await self._messages.get_message(message_id)
        if message is None:
            raise NotFound("unknown message - at `$.message_id`")
        # Permission before state: a non-member learns nothing about a message's deletion.
        await self._access.require_ability(actor, message.conversation_id, Ability.SEND,
                                           what="react")
        if message.is_deleted:
            raise Conflict("the message is deleted - at `$.message_id`")
