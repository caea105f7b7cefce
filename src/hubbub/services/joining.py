"""JoinConversation and LeaveConversation (PROTOCOL.md §3): the membership decision, the
subscription, and the caller's view of the conversation, in that order.

The door that joins (a WebSocket connection) says where the events go through a
`Subscription`; the order is the protocol's: the answer is sent only once the
subscription is in effect on the bus, so every event committed after it reaches the
connection, and the view it carries is read after that, so nothing falls in between.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from hubbub.protocol.objects import ConversationObject, Role
from hubbub.services.context import Actor
from hubbub.services.conversations import ConversationService


class Subscription(Protocol):
    """One connection's subscriptions, as the door that joins keeps them."""

    def is_subscribed(self, conversation_id: str) -> bool: ...

    async def subscribe(self, conversation_id: str) -> None:
        """Deliver the conversation's events; return once the bus carries them here."""

    def baseline(self, conversation_id: str, version: int) -> None:
        """The version the joiner's answer shows: delivery starts its order gate there."""

    def unsubscribe(self, conversation_id: str) -> None:
        """Stop delivering the conversation's events (idempotent)."""


@dataclass(frozen=True, slots=True)
class Joined:
    """The answer to a join: the caller's role and its view of the conversation (§2)."""

    role: Role
    conversation: ConversationObject


class Joining:
    """Join and leave, on the conversation rules of `ConversationService`."""

    def __init__(self, conversations: ConversationService) -> None:
        self._conversations = conversations

    async def join(self, actor: Actor, conversation_id: str,
                   subscription: Subscription) -> Joined:
        """Decide the membership (a channel's newcomer becomes a `member`), subscribe, then
        read the caller's view.

        Raises:
            NotFound: unknown conversation; Forbidden: banned, or not a member of a
            private one.
        """
        conversation, role = await self._conversations.join(actor, conversation_id)
        await subscription.subscribe(conversation.id)
        view = await self._conversations.view(actor, conversation, role)
        subscription.baseline(conversation.id, view.version)
        return Joined(role, view)

    async def leave(self, conversation_id: str, subscription: Subscription) -> None:
        """Unsubscribe; the membership stays (leaving it is §7's DELETE).

        Raises:
            NotFound: not subscribed, and no such conversation.
        """
        if not subscription.is_subscribed(conversation_id):
            await self._conversations.require_exists(conversation_id)
        subscription.unsubscribe(conversation_id)
