"""What only the backend does, through the server API (PROTOCOL.md §8): set up users,
erase them, create conversations for them, disconnect them. Everything else it does goes
through the same use cases as the user doors (conversations.py, messages.py)."""

from __future__ import annotations

import hashlib
from typing import Any

from hubbub.domain import profile
from hubbub.domain.errors import Conflict, NotFound
from hubbub.domain.models import Conversation, User
from hubbub.protocol.objects import Kind
from hubbub.services import webhook_events
from hubbub.services.context import Clock, IdSource, new_id, now_micros
from hubbub.services.conversations import ConversationService, backend_plan
from hubbub.services.events import Events
from hubbub.services.messages import MessageService
from hubbub.services.presence import PresenceService
from hubbub.services.webhook_events import WebhookEvents
from hubbub.storage.idempotency import IdempotencyStore
from hubbub.storage.members import MemberStore
from hubbub.storage.messages import MessageStore
from hubbub.storage.users import UserStore

# PROTOCOL.md §1: the close code of a connection the backend ended (disconnect, erase).
CLOSED_BY_BACKEND = 4003


class AccountService:
    def __init__(self, users: UserStore, members: MemberStore, messages: MessageStore,
                 keys: IdempotencyStore, conversations: ConversationService,
                 message_service: MessageService, presence: PresenceService,
                 events: Events, *, webhooks: WebhookEvents = webhook_events.OFF,
                 clock: Clock = now_micros, new_id: IdSource = new_id) -> None:
        self._users = users
        self._members = members
        self._messages = messages
        self._keys = keys
        self._conversations = conversations
        self._message_service = message_service
        self._presence = presence
        self._webhooks = webhooks
        self._events = events
        self._clock = clock
        self._new_id = new_id

    async def put_user(self, user_id: str, name: str | None, avatar_url: str | None,
                       metadata: dict[str, Any] | None) -> tuple[User, bool]:
        """Create or update a user (an erased one is re-created); True when created.

        Raises:
            BadRequest: naming the field out of bounds.
        """
        checked_name = profile.check_user_name(name)
        checked_url = profile.check_avatar_url(avatar_url)
        text = profile.metadata_text(metadata)
        return await self._users.put_user(user_id, checked_name, checked_url, text,
                                          self._clock())

    async def get_user(self, user_id: str, where: str = "user_id") -> User:
        """Raises NotFound for an unknown or erased user (`where` names the field)."""
        user = await self._users.get_user(user_id)
        if user is None:
            raise NotFound(f"unknown user - at `{where}`")
        return user

    async def ensure_users(self, user_ids: list[str], where: str) -> None:
        """Create the users the backend names that hubbub has not seen yet.

        Raises:
            NotFound: one of them is erased (`where` names the field).
        """
        now = self._clock()
        for user_id in dict.fromkeys(user_ids):
            user = await self._users.upsert_user(user_id, None, now)
            if user.erased:
                raise NotFound(f"user {user_id} is erased - at `{where}`")

    async def erase(self, user_id: str) -> None:
        """Erase a user (GDPR): refuse its tokens, close its connections everywhere, end
        its memberships, make its messages tombstones with their content deleted, and
        take back its reactions and receipts.
        Erasing again finishes what an interrupted erasure left.

        Raises:
            NotFound: the user was never known.
        """
        now = self._clock()
        with self._webhooks.emit(webhook_events.user_erased(user_id)):
            known = await self._users.erase_user(user_id, now)
        if not known:
            raise NotFound("unknown user - at `user_id`")
        self.disconnect(user_id, "user erased")
        for conversation_id in await self._members.remove_all_memberships(user_id):
            self._conversations.membership_ended(conversation_id, user_id)
        self._message_service.erased(user_id,
                                     await self._messages.erase_user_content(user_id, now))

    def disconnect(self, user_id: str, reason: str = "disconnected by the backend") -> None:
        """Close every connection of the user, on every instance (over the bus)."""
        self._events.disconnect_user(user_id, CLOSED_BY_BACKEND, reason)

    async def create_conversation(self, kind: Kind, name: str | None, owner_id: str | None,
                                  member_ids: list[str], idempotency_key: str | None,
                                  body: bytes) -> tuple[Conversation, bool]:
        """Create a conversation (missing users are created); with an `Idempotency-Key`,
        a retry with the same key and body (`body`: its bytes as decoded and encoded again)
        returns the conversation the first made, with False.

        Raises:
            BadRequest; NotFound: an erased user; Conflict: the key was used with another
            body, or its first request is still running.
        """
        plan = backend_plan(kind, name, owner_id, member_ids)
        conversation_id = self._new_id()
        if idempotency_key is not None:
            fingerprint = hashlib.sha256(body).hexdigest()
            stored, claimed = await self._keys.claim_key(
                idempotency_key, fingerprint, conversation_id, self._clock())
            if stored != fingerprint:
                raise Conflict("Idempotency-Key already used with another body - at "
                               "header `Idempotency-Key`")
            if claimed != conversation_id:
                return await self._earlier(claimed), False
        try:
            # Users are created only once the request is known to create the conversation.
            await self.ensure_users(
                [*plan.others, *([plan.creator_id] if plan.creator_id else [])],
                "$.member_ids")
            conversation = await self._conversations.create_for(kind, plan, conversation_id)
        except Exception:
            if idempotency_key is not None:
                await self._keys.release_key(idempotency_key, conversation_id)
            raise
        created = conversation.id == conversation_id
        if not created and idempotency_key is not None:
            # The pair's direct conversation existed: a retry finds it the same way.
            await self._keys.release_key(idempotency_key, conversation_id)
        return conversation, created

    async def _earlier(self, conversation_id: str) -> Conversation:
        try:
            return await self._conversations.require_exists(conversation_id)
        except NotFound:
            raise Conflict("the first request with this Idempotency-Key is still "
                           "running; retry") from None

    async def presence(self, conversation_id: str) -> list[tuple[str, bool]]:
        """Each member of the conversation and whether it is connected anywhere (the
        backend sees everyone's, accepted or not).

        Raises:
            NotFound: unknown conversation.
        """
        await self._conversations.require_exists(conversation_id)
        members = [m.user_id for m in await self._members.list_members(conversation_id)]
        online = await self._presence.online(members)
        return [(user_id, user_id in online) for user_id in members]
