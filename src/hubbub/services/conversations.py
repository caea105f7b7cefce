"""Conversations and their members: create, list, join, and the member management of §7."""

from __future__ import annotations

from typing import NamedTuple

from hubbub.coordination.ratelimit import RateLimiter
from hubbub.domain import validation
from hubbub.domain.errors import BadRequest, Forbidden, NotFound
from hubbub.domain.limits import MAX_INITIAL_MEMBERS
from hubbub.domain.models import Conversation, ConversationSummary, Member, Membership
from hubbub.domain.permissions import (
    Ability,
    can_read,
    check_removal,
    check_role_change,
    require,
)
from hubbub.domain.ratelimit import BucketRule
from hubbub.protocol.objects import ConversationObject, Kind, Role, canonical_user_id
from hubbub.protocol.server import UserJoined
from hubbub.services.access import require_conversation
from hubbub.services.consent import Consent
from hubbub.services.context import Actor, Clock, IdSource, new_id, now_micros
from hubbub.services.events import Events
from hubbub.services.inbox import InboxService
from hubbub.services.membership import MembershipCache
from hubbub.services.views import conversation_object, summary_object
from hubbub.services.webhook_events import (
    OFF,
    WebhookEvents,
    conversation_created,
    member_put,
    member_removed,
)
from hubbub.storage.conversations import ConversationStore
from hubbub.storage.members import MemberStore
from hubbub.storage.users import UserStore


class ConversationService:
    def __init__(self, conversations: ConversationStore, members: MemberStore,
                 users: UserStore, memberships: MembershipCache, events: Events,
                 consent: Consent, limiter: RateLimiter, create_rule: BucketRule, *,
                 clock: Clock = now_micros, new_id: IdSource = new_id,
                 webhooks: WebhookEvents = OFF, inbox: InboxService | None = None) -> None:
        """`create_rule`: the bucket of conversations a user may create (per user, shared
        by every instance through `limiter`); `inbox`: who to tell when a user's list of
        conversations changes (PROTOCOL.md §4.1), None when the inbox is off."""
        self._conversations = conversations
        self._members = members
        self._users = users
        self._memberships = memberships
        self._events = events
        self._clock = clock
        self._new_id = new_id
        self._consent = consent
        self._limiter = limiter
        self._create_rule = create_rule
        self._webhooks = webhooks
        self._inbox = inbox

    async def create(self, actor: Actor, kind: Kind, name: str | None,
                     member_ids: list[str]) -> tuple[Conversation, bool]:
        """Create a conversation (§7): the actor is its owner, or in a `direct` one a peer
        of the one other member; that one returns the existing conversation of the pair
        with False, which the actor thereby accepts.

        A member hubbub has not seen yet is the backend's user all the same: its row is
        made (named by the token's `name` on its first connection), and it finds the
        conversation, history included, when it first connects.

        Raises:
            BadRequest: wrong name or member list for the kind;
            RateLimited: the actor created too many conversations lately.
        """
        name = validation.check_conversation_name(kind, name)
        canonical = (canonical_user_id(uid) for uid in member_ids)
        others = [uid for uid in dict.fromkeys(canonical) if uid != actor.user_id]
        if kind == "direct" and len(others) != 1:
            raise BadRequest("a direct conversation takes exactly one other member - at "
                             "`$.member_ids`")
        if len(others) > MAX_INITIAL_MEMBERS:
            raise BadRequest(f"at most {MAX_INITIAL_MEMBERS} initial members - at "
                             "`$.member_ids`")
        if kind == "direct":
            existing = await self._conversations.find_direct(actor.user_id, others[0])
            if existing is not None:
                await self._opened(actor, existing)
                return existing, False
        # Only a new conversation costs a token: opening an existing direct one is how a
        # client finds it (§7), and is free. Charged before the members' rows are made.
        await self._limiter.hit("c:" + actor.user_id, self._create_rule)
        await self._users.ensure_users(others, self._clock())
        with self._webhooks.emit(conversation_created):
            conversation, created = await self._conversations.create_conversation(
                self._new_id(), kind, name, actor.user_id, others, self._clock()
            )
        if not created:
            await self._opened(actor, conversation)  # the pair's, made a moment ago
        elif self._inbox is not None:
            await self._inbox.created(conversation)
        return conversation, created

    async def _opened(self, actor: Actor, conversation: Conversation) -> None:
        """The actor opened a direct conversation the other party made: they take part."""
        membership = await self._memberships.membership(conversation.id, actor.user_id)
        await self._consent.took_part(actor, conversation.id, membership)

    async def get(self, actor: Actor, conversation_id: str) -> tuple[Conversation, Role | None]:
        """One conversation, for its members (and anyone, for a channel)."""
        conversation = await self._require(conversation_id)
        role = await self._memberships.role(conversation_id, actor.user_id)
        if not can_read(conversation.kind, role):
            raise Forbidden("not allowed to read this conversation")
        return conversation, role

    async def role_of(self, actor: Actor, conversation_id: str) -> Role | None:
        return await self._memberships.role(conversation_id, actor.user_id)

    async def summary(self, actor: Actor, conversation_id: str) -> ConversationSummary | None:
        """The caller's view of one conversation (role, unread count, last message), which
        §2 shows wherever the caller is a member; None for non-members and the banned."""
        found = await self._conversations.list_conversations(actor.user_id, conversation_id)
        return found[0] if found else None

    async def view(self, actor: Actor, conversation: Conversation,
                   role: Role | None) -> ConversationObject:
        """The conversation as §2 shows it to the caller: a member sees its role, unread
        count and last message (read now); others see neither."""
        summary = None if role is None else await self.summary(actor, conversation.id)
        if summary is None:
            return conversation_object(conversation, role)
        return summary_object(summary)

    async def require_exists(self, conversation_id: str) -> Conversation:
        """Raise NotFound unless the conversation exists."""
        return await self._require(conversation_id)

    async def list_for(self, actor: Actor) -> list[ConversationSummary]:
        return await self._conversations.list_conversations(actor.user_id)

    async def join(self, actor: Actor, conversation_id: str) -> tuple[Conversation, Role]:
        """Make sure the actor may subscribe; a non-member joining a channel becomes a
        `member` and `UserJoined` is broadcast. Joining accepts the membership.

        Raises:
            NotFound: unknown conversation (or a private one the actor is not in);
            Forbidden: banned, or a private conversation.
        """
        conversation = await self._require(conversation_id)
        membership = await self._memberships.membership(conversation_id, actor.user_id)
        role = None if membership is None else membership.role
        if not can_read(conversation.kind, role):
            raise Forbidden("not allowed to join this conversation")
        await self._consent.took_part(actor, conversation_id, membership)
        if role is None:
            # Insert-if-absent, never an upsert: a ban landing meanwhile must win.
            with self._webhooks.emit(member_put(None)):
                member, created = await self._members.add_member_if_absent(
                    conversation_id, actor.user_id, "member", self._clock()
                )
            self._memberships.forget(conversation_id, actor.user_id)
            if not created:
                # Someone made the membership first (a ban, an add, another device's join):
                # decide on the role it has now.
                if not can_read(conversation.kind, member.role):
                    raise Forbidden("not allowed to join this conversation")
                await self._consent.took_part(actor, conversation_id,
                                              Membership(member.role, member.accepted))
                return conversation, member.role
            role = member.role
            self._events.membership_changed(conversation_id, actor.user_id, role)
            self._events.to_conversation(conversation_id, UserJoined(
                conversation_id=conversation_id, user_id=actor.user_id,
                user_name=actor.name,
            ))
            conversation = await self._require(conversation_id)
            if self._inbox is not None:
                await self._inbox.added(conversation_id, actor.user_id, role)
        return conversation, role

    async def members(self, actor: Actor, conversation_id: str) -> list[Member]:
        await self.get(actor, conversation_id)
        return await self._members.list_members(conversation_id)

    async def put_member(self, actor: Actor, conversation_id: str, user_id: str,
                         role: Role) -> tuple[Member, bool]:
        """Add a member or change a role (needs `moderate`; owners alone make admins). A
        new member has not accepted yet: its presence stays hidden until it takes part.
        It need not have connected ever (its user row is made, see `create`).

        Raises:
            Forbidden, NotFound, BadRequest; Conflict: the last owner steps down while
            others remain (decided by the store, atomically).
        """
        conversation = await self._require(conversation_id)
        if conversation.kind == "direct":
            raise BadRequest("the members of a direct conversation are fixed")
        user_id = canonical_user_id(user_id)
        actor_role = await self._memberships.role(conversation_id, actor.user_id)
        current = await self._memberships.role(conversation_id, user_id)
        check_role_change(actor_role, current, role)
        if current is None:
            await self._users.ensure_users([user_id], self._clock())
        return await self.apply_role(conversation_id, user_id, role)

    async def apply_role(self, conversation_id: str, user_id: str,
                         role: Role) -> tuple[Member, bool]:
        """Store a role someone entitled to set it chose (a moderator, or the backend through
        the server API), and announce it. Call after checking the conversation exists and
        is not `direct`.

        Raises:
            NotFound: unknown (or erased) user; Conflict: the last owner steps down.
        """
        current = await self._memberships.role(conversation_id, user_id)
        with self._webhooks.emit(member_put(current)):
            member, created = await self._members.put_member(
                conversation_id, user_id, role, self._clock()
            )
        self._memberships.forget(conversation_id, user_id)
        self._events.membership_changed(conversation_id, user_id, role)
        if created and role != "banned":
            self._events.to_conversation(conversation_id, UserJoined(
                conversation_id=conversation_id, user_id=user_id, user_name=member.user_name
            ))
        if self._inbox is not None:
            if created and role != "banned":
                await self._inbox.added(conversation_id, user_id, role)
            elif not created and role == "banned":
                self._inbox.removed(conversation_id, user_id)
        return member, created

    async def remove_member(self, actor: Actor, conversation_id: str, user_id: str) -> None:
        """Remove a member: anyone may leave; removing others needs `moderate`.

        Raises:
            Forbidden, NotFound, BadRequest; Conflict: the last owner leaves while others
            remain (decided by the store, atomically).
        """
        conversation = await self._require(conversation_id)
        actor_role = await self._memberships.role(conversation_id, actor.user_id)
        if conversation.kind == "direct" and actor_role is not None:
            # Told to its two peers, neither of whom moderates; outsiders get FORBIDDEN below.
            raise BadRequest("the members of a direct conversation are fixed")
        user_id = canonical_user_id(user_id)
        is_self = actor.user_id == user_id
        if not is_self:
            # Permission first: an outsider must not learn who is in a private group.
            require(actor_role, Ability.MODERATE, what="manage members")
        target = await self._memberships.role(conversation_id, user_id)
        if target is None:
            raise NotFound("not a member")
        check_removal(actor_role, target, is_self=is_self)
        await self.end_membership(conversation_id, user_id)

    async def end_membership(self, conversation_id: str, user_id: str) -> bool:
        """Remove a membership whose removal was allowed, and announce it; False when
        there was none.

        Raises:
            Conflict: the last owner leaves while others remain.
        """
        with self._webhooks.emit(member_removed(conversation_id, user_id)):
            removed = await self._members.remove_member(conversation_id, user_id)
        if removed:
            self.membership_ended(conversation_id, user_id)
        return removed

    def membership_ended(self, conversation_id: str, user_id: str) -> None:
        """Tell every instance a membership is gone (its role cache, its subscriptions)."""
        self._memberships.forget(conversation_id, user_id)
        self._events.membership_changed(conversation_id, user_id, None)
        if self._inbox is not None:
            self._inbox.removed(conversation_id, user_id)

    async def create_for(self, kind: Kind, plan: BackendPlan,
                         conversation_id: str) -> Conversation:
        """Create a conversation the backend asked for (server API), as `backend_plan`
        checked it; a `direct` one returns the pair's existing conversation if any."""
        conversation, created = await self._conversations.create_conversation(
            conversation_id, kind, plan.name, plan.creator_id, list(plan.others),
            self._clock())
        if created and self._inbox is not None:
            await self._inbox.created(conversation)
        return conversation

    async def _require(self, conversation_id: str) -> Conversation:
        return await require_conversation(self._conversations, conversation_id)


class BackendPlan(NamedTuple):
    """A conversation the backend asked for, checked: its creator ("" for none)."""

    name: str | None
    creator_id: str
    others: tuple[str, ...]


def backend_plan(kind: Kind, name: str | None, owner_id: str | None,
                 member_ids: list[str]) -> BackendPlan:
    """Check a server-API conversation before anything is stored: `owner_id` is its owner,
    or None for none; a `direct` one takes exactly two members (peers) and no owner.

    Raises:
        BadRequest: wrong name or members for the kind.
    """
    checked = validation.check_conversation_name(kind, name)
    members = [uid for uid in dict.fromkeys(member_ids) if uid != owner_id]
    if kind == "direct":
        if owner_id is not None or len(members) != 2:
            raise BadRequest("a direct conversation takes exactly two member_ids and no "
                             "owner - at `$.member_ids`")
        owner_id, members = members[0], members[1:]
    if len(members) > 1000:
        raise BadRequest("at most 1000 initial members - at `$.member_ids`")
    return BackendPlan(checked, owner_id or "", tuple(members))
