"""The outgoing events of docs/WEBHOOKS.md: which change emits which, and their `data`.

Each builder turns what a store call returned into the events to store with it, inside its
transaction (storage/outbox.py). They are pure and cheap: they run in the writer's batch.
`data` reuses the protocol's objects; the conversation id and version are columns of the
outbox, added to `data` when the event is sent (hubbub/webhooks/body.py).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import msgspec

from hubbub.domain.calls import Call, EndReason
from hubbub.domain.clock import format_time
from hubbub.domain.models import (
    Conversation,
    Deletion,
    Member,
    Message,
    ReactionChange,
    SendOutcome,
)
from hubbub.protocol.objects import CallObject, ConversationObject, MessageObject, Role
from hubbub.services.views import conversation_object, message_object
from hubbub.storage.outbox import EventBuilder, OutboxEvent, emitting

_encode = msgspec.json.Encoder().encode
_MISSED = (EndReason.TIMEOUT, EndReason.REJECTED)


class MessageData(msgspec.Struct, frozen=True):
    message: MessageObject


class MessageDeletedData(msgspec.Struct, frozen=True):
    message_id: str
    deleted_at: str
    deleted_by: str | None


class ReactionData(msgspec.Struct, frozen=True):
    message_id: str
    user_id: str
    emoji: str


class MemberData(msgspec.Struct, frozen=True):
    user_id: str
    role: Role | None  # None: removed


class ConversationData(msgspec.Struct, frozen=True):
    conversation: ConversationObject


class CallData(msgspec.Struct, frozen=True):
    call: CallObject


class UserData(msgspec.Struct, frozen=True):
    user_id: str


# The line of the events of no conversation (`user.erased`): stored with this conversation
# id, they are ordered among themselves, and their `data` has no conversation id or
# version (webhooks/body.py).
NO_CONVERSATION = ""


class WebhookEvents:
    """What the services wrap their store calls in: `emit(builder)` when webhooks are on,
    a no-op when they are off (no event is built or stored)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def emit(self, builder: EventBuilder) -> AbstractContextManager[None]:
        return emitting(builder) if self.enabled else nullcontext()


OFF = WebhookEvents(enabled=False)


def _event(kind: str, conversation_id: str, version: int | None,
           data: msgspec.Struct) -> list[OutboxEvent]:
    return [OutboxEvent(kind, conversation_id, version, _encode(data))]


class MessageCreated:
    """The `message.created` builder of one send: a new message (not an idempotent retry).
    It keeps the message's wire form, which the send's `NewMessage` reuses: built twice, it
    was a tenth of the loop's time per message with webhooks on (bench.webhooks)."""

    __slots__ = ("view",)

    def __init__(self) -> None:
        self.view: MessageObject | None = None

    def __call__(self, outcome: SendOutcome) -> list[OutboxEvent]:
        if not outcome.created:
            return []
        self.view = view = message_object(outcome.message)
        return _event("message.created", view.conversation_id, view.version,
                      MessageData(view))


def message_edited(message: Message) -> list[OutboxEvent]:
    return _event("message.edited", message.conversation_id, message.version,
                  MessageData(message_object(message)))


def message_deleted(result: Deletion) -> list[OutboxEvent]:
    message = result.message
    if not result.changed or message.deleted_at is None:
        return []
    return _event("message.deleted", message.conversation_id, message.version,
                  MessageDeletedData(message.id, format_time(message.deleted_at),
                                     message.deleted_by))


def reaction(kind: str, user_id: str, emoji: str) -> EventBuilder:
    """`reaction.added` or `reaction.removed`, when the reaction changed."""
    def build(change: ReactionChange) -> list[OutboxEvent]:
        if not change.changed:
            return []
        return _event(kind, change.conversation_id, change.version,
                      ReactionData(change.message_id, user_id, emoji))
    return build


def member_put(previous: Role | None) -> EventBuilder:
    """`member.added` for a new membership, `member.role_changed` for another role."""
    def build(result: tuple[Member, bool]) -> list[OutboxEvent]:
        member, created = result
        if not created and member.role == previous:
            return []
        kind = "member.added" if created else "member.role_changed"
        return _event(kind, member.conversation_id, None, MemberData(member.user_id,
                                                                     member.role))
    return build


def member_removed(conversation_id: str, user_id: str) -> EventBuilder:
    def build(removed: Any) -> list[OutboxEvent]:
        if not removed:
            return []
        return _event("member.removed", conversation_id, None, MemberData(user_id, None))
    return build


def conversation_created(result: tuple[Conversation, bool]) -> list[OutboxEvent]:
    conversation, created = result
    if not created:
        return []
    return _event("conversation.created", conversation.id, conversation.version,
                  ConversationData(conversation_object(conversation)))


def call_missed(view: Callable[[Call], CallObject]) -> EventBuilder:
    """A call that ended unanswered: timed out or rejected (`view`: its wire form)."""
    def build(call: Call | None) -> list[OutboxEvent]:
        if call is None or call.end_reason not in _MISSED:
            return []
        return _event("call.missed", call.conversation_id, None, CallData(view(call)))
    return build


def user_erased(user_id: str) -> EventBuilder:
    """`user.erased`, in the transaction that marks the user erased (each erasure request,
    a repeated one too: it finishes what an interrupted one left)."""
    def build(known: bool) -> list[OutboxEvent]:
        if not known:
            return []
        return _event("user.erased", NO_CONVERSATION, 0, UserData(user_id))
    return build
