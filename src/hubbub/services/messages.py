"""Sending, editing, deleting and reading messages (PROTOCOL.md §3)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hubbub.domain import validation
from hubbub.domain.clock import format_optional, format_time
from hubbub.domain.errors import BadRequest, Forbidden, NotFound, Rejected
from hubbub.domain.models import (
    SYSTEM_SENDER,
    Erasure,
    Message,
    MessageDraft,
    Page,
    ThreadChange,
)
from hubbub.domain.permissions import Ability, can, require
from hubbub.protocol.objects import (
    MENTION_EVERYONE,
    Attachment,
    MessageObject,
    Role,
    canonical_user_id,
)
from hubbub.protocol.server import (
    MessageDeleted,
    MessageEdited,
    NewMessage,
    ReactionRemoved,
    ThreadUpdated,
)
from hubbub.services.access import Access, require_conversation
from hubbub.services.consent import Consent
from hubbub.services.context import Actor, Clock, IdSource, new_id, now_micros
from hubbub.services.events import Events
from hubbub.services.membership import MembershipCache
from hubbub.services.moderation import Moderator, Review
from hubbub.services.views import message_object
from hubbub.services.webhook_events import (
    OFF,
    MessageCreated,
    WebhookEvents,
    message_deleted,
    message_edited,
)
from hubbub.storage.conversations import ConversationStore
from hubbub.storage.messages import MessageStore


@dataclass(frozen=True, slots=True)
class Sent:
    """What a send did: the stored message, whether this call created it (False: a retried
    `client_message_id`), and its wire form, built once for the broadcast and the answer."""

    message: Message
    created: bool
    view: MessageObject


class MessageService:
    def __init__(self, messages: MessageStore, conversations: ConversationStore,
                 memberships: MembershipCache, events: Events, consent: Consent, *,
                 clock: Clock = now_micros, new_id: IdSource = new_id,
                 webhooks: WebhookEvents = OFF,
                 moderator: Moderator | None = None) -> None:
        self._messages = messages
        self.moderator = moderator
        self._webhooks = webhooks
        self._conversations = conversations
        self._memberships = memberships
        self._events = events
        self._clock = clock
        self._new_id = new_id
        self._consent = consent
        self._access = Access(memberships, conversations)

    async def send(self, actor: Actor, conversation_id: str, content: str,
                   parent_id: str | None, attachments: list[Attachment],
                   client_message_id: str | None, mentions: Sequence[str] = ()) -> Sent:
        """Store a message and broadcast `NewMessage`; a retried `client_message_id` returns
        the stored message and broadcasts nothing. Sending accepts the membership.
        `mentions` name members (BadRequest otherwise), or `@here`/`@all`, which need
        `moderate` (Forbidden otherwise).

        Raises:
            BadRequest, NotFound, Forbidden
        """
        validation.check_message_body(content, attachments)
        membership = await self._memberships.membership(conversation_id, actor.user_id)
        role = None if membership is None else membership.role
        if role is None:
            await require_conversation(self._conversations, conversation_id)
        require(role, Ability.SEND, what="send messages")
        mentioned = await self._check_mentions(conversation_id, role, mentions)
        await self._check_parent(conversation_id, parent_id)
        if self.moderator is not None:
            content = await self._moderated(Review(conversation_id, actor.user_id, content,
                                                   attachments, parent_id))
        sent = await self._store(MessageDraft(
            id=self._new_id(), conversation_id=conversation_id, sender_id=actor.user_id,
            sender_name=actor.name, content=content, parent_id=parent_id,
            attachments=tuple(attachments), client_message_id=client_message_id,
            created_at=self._clock(), mentions=mentioned,
        ))
        if membership is not None and not membership.accepted:  # once per membership
            await self._consent.took_part(actor, conversation_id, membership)
        return sent

    async def post_system(self, conversation_id: str, content: str, parent_id: str | None,
                          attachments: list[Attachment],
                          client_message_id: str | None) -> Sent:
        """Store a message of kind `system` (no sender; the server API's) and broadcast
        `NewMessage`, with the rules and the idempotency of `send`.

        Raises:
            BadRequest, NotFound
        """
        validation.check_message_body(content, attachments)
        await require_conversation(self._conversations, conversation_id)
        await self._check_parent(conversation_id, parent_id)
        return await self._store(MessageDraft(
            self._new_id(), conversation_id, SYSTEM_SENDER, "", content, parent_id,
            tuple(attachments), client_message_id, self._clock()))

    def erased(self, user_id: str, erasure: Erasure) -> None:
        """Tell the conversations what erasing the user changed (deleted messages,
        removed reactions, recounted threads), as if the user had done it."""
        for message in erasure.tombstones:
            assert message.deleted_at is not None
            self._events.to_conversation(message.conversation_id, MessageDeleted(
                conversation_id=message.conversation_id, message_id=message.id,
                version=message.version, deleted_at=format_time(message.deleted_at),
                deleted_by=SYSTEM_SENDER,
            ))
        for removed in erasure.reactions:
            self._events.to_conversation(removed.conversation_id, ReactionRemoved(
                conversation_id=removed.conversation_id, message_id=removed.message_id,
                version=removed.version, user_id=user_id, emoji=removed.emoji,
            ))
        for thread in erasure.threads:
            self._announce_thread(thread)

    async def _moderated(self, review: Review) -> str:
        """The content to store, as the moderator decides (of a send or an edit).

        Raises:
            Rejected: the moderator said no (or, failing closed, did not answer);
            BadRequest: the replacement breaks the message rules.
        """
        assert self.moderator is not None
        verdict = await self.moderator.review(review)
        if verdict.action == "reject":
            raise Rejected(verdict.reason or "the message was rejected by moderation")
        if verdict.action == "replace" and verdict.content is not None:
            if review.action == "edit":
                validation.check_edit(verdict.content)
            else:
                validation.check_message_body(verdict.content, review.attachments)
            return verdict.content
        return review.content

    async def edit(self, actor: Actor, message_id: str, content: str) -> Message:
        """Replace the content of one's own live message; broadcasts `MessageEdited`."""
        validation.check_edit(content)
        message = await self._get(message_id)
        _refuse_system(message, "edited")
        role = await self._memberships.role(message.conversation_id, actor.user_id)
        require(role, Ability.SEND, what="edit messages")
        if message.sender_id != actor.user_id:
            raise Forbidden("only the sender may edit a message")
        if self.moderator is not None:
            content = await self._moderated(Review(
                message.conversation_id, actor.user_id, content, list(message.attachments),
                message.parent_id, action="edit", message_id=message_id))
        with self._webhooks.emit(message_edited):
            edited = await self._messages.edit(message_id, content, self._clock())
        self._events.to_conversation(
            edited.conversation_id, MessageEdited(message=message_object(edited))
        )
        return edited

    async def delete(self, actor: Actor, message_id: str) -> Message:
        """Soft-delete one's own message, or anyone's with `moderate`; broadcasts
        `MessageDeleted` unless it was deleted already."""
        message = await self._get(message_id)
        _refuse_system(message, "deleted")
        role = await self._memberships.role(message.conversation_id, actor.user_id)
        if message.sender_id == actor.user_id:
            require(role, Ability.SEND, what="delete messages")
        elif not can(role, Ability.MODERATE):
            raise Forbidden("only the sender or a moderator may delete a message")
        with self._webhooks.emit(message_deleted):
            deletion = await self._messages.delete(message_id, actor.user_id, self._clock())
        deleted = deletion.message
        if deletion.changed:
            assert deleted.deleted_at is not None
            self._events.to_conversation(deleted.conversation_id, MessageDeleted(
                conversation_id=deleted.conversation_id, message_id=deleted.id,
                version=deleted.version, deleted_at=format_time(deleted.deleted_at),
                deleted_by=actor.user_id,
            ))
            self._announce_thread(deletion.thread)
        return deleted

    async def history(self, actor: Actor, conversation_id: str, before: int | None,
                      limit: int, parent_id: str | None = None) -> Page:
        """A page of messages, ascending, older than `before` (a seq); with `parent_id`,
        of that message's thread (its replies, with the same cursor).

        Raises:
            NotFound, Forbidden; BadRequest: `parent_id` is no message of the conversation.
        """
        await self._access.require_readable(actor, conversation_id)
        await self._check_parent(conversation_id, parent_id)
        return await self._messages.history(conversation_id, before, limit, parent_id)

    async def _store(self, draft: MessageDraft) -> Sent:
        """Store a draft; broadcast `NewMessage` unless it was a retry (and, for a reply,
        `ThreadUpdated` of its parent, whose version comes next)."""
        created = MessageCreated()
        with self._webhooks.emit(created):
            outcome = await self._messages.send(draft)
        view = created.view or message_object(outcome.message)
        if outcome.created:
            self._events.to_conversation(draft.conversation_id, NewMessage(message=view))
            self._announce_thread(outcome.thread)
        return Sent(outcome.message, outcome.created, view)

    def _announce_thread(self, thread: ThreadChange | None) -> None:
        if thread is not None:
            self._events.to_conversation(thread.conversation_id, ThreadUpdated(
                conversation_id=thread.conversation_id, message_id=thread.message_id,
                version=thread.version, reply_count=thread.reply_count,
                last_reply_at=format_optional(thread.last_reply_at),
            ))

    async def _check_mentions(self, conversation_id: str, role: Role | None,
                              mentions: Sequence[str]) -> tuple[str, ...]:
        """The mentions, each once, in order: members (not banned) by id, and `@here` /
        `@all` only for a role with `moderate` (docs/DECISIONS.md, "Mentions")."""
        unique = tuple(dict.fromkeys(
            m if m in MENTION_EVERYONE else canonical_user_id(m) for m in mentions))
        for index, mention in enumerate(mentions):
            if mention in MENTION_EVERYONE:
                if not can(role, Ability.MODERATE):
                    raise Forbidden(f"mentioning {mention} needs the moderate permission"
                                    f" - at `$.mentions[{index}]`")
                continue
            member = await self._memberships.role(conversation_id, canonical_user_id(mention))
            if member is None or member == "banned":
                raise BadRequest("a mention must name a member of the conversation"
                                 f" - at `$.mentions[{index}]`")
        return unique

    async def _check_parent(self, conversation_id: str, parent_id: str | None) -> None:
        if parent_id is not None:
            parent = await self._messages.get_message(parent_id)
            if parent is None or parent.conversation_id != conversation_id:
                raise BadRequest("parent message not found in this conversation - at `$.parent_id`")

    async def _get(self, message_id: str) -> Message:
        message = await self._messages.get_message(message_id)
        if message is None:
            raise NotFound("unknown message - at `$.message_id`")
        return message


def _refuse_system(message: Message, what: str) -> None:
    """A system message is the backend's: no user edits or deletes it, not even an owner."""
    if message.is_system:
        raise Forbidden(f"a system message cannot be {what}")
