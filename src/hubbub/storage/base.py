"""The `Store` seam: every use case's storage needs, one method each.

Writes are serialised through one writer per store and batched into shared transactions
(group commit); reads run concurrently. Implementations raise `ChatError`s for the rules
they check inside a transaction (e.g. editing a message deleted a moment ago) and translate
driver errors into `StoreUnavailable`.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from hubbub.domain.calls import Call, CallState, EndReason
from hubbub.domain.errors import ChatError
from hubbub.domain.models import (
    Conversation,
    ConversationSummary,
    Member,
    Membership,
    Message,
    MessageDraft,
    Page,
    ReactionChange,
    ReceiptChange,
    SearchPage,
    SendOutcome,
    SyncPage,
    User,
)
from hubbub.protocol.objects import Kind, Role


class StoreUnavailable(ChatError):
    """The database did not answer; reported to clients as INTERNAL_ERROR."""

    code = "INTERNAL_ERROR"
    http_status = 503


class Store(Protocol):
    """Persistent state of hubbub. All times are UTC microseconds."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers a trivial query."""

    async def upsert_user(self, user_id: str, name: str | None, now: int) -> User:
        """Create the user on first sight; refresh the display name when one is given."""

    async def touch_user(self, user_id: str, now: int) -> None:
        """Record `last_seen`."""

    async def get_user(self, user_id: str) -> User | None: ...

    async def create_conversation(
        self, conversation_id: str, kind: Kind, name: str | None, created_by: str,
        member_ids: list[str], now: int,
    ) -> tuple[Conversation, bool]:
        """Create it with the creator in `creator_role(kind)` and the others as members;
        the creator's membership is accepted, the others' are not.

        For `direct`, an existing conversation of the same pair is returned with False.
        """

    async def find_direct(self, user_id: str, other_id: str) -> Conversation | None:
        """The direct conversation of the pair, if there is one."""

    async def get_conversation(self, conversation_id: str) -> Conversation | None: ...

    async def list_conversations(self, user_id: str, conversation_id: str | None = None
                                 ) -> list[ConversationSummary]:
        """The user's conversations (banned ones left out), newest activity first; only
        that one (if the user is in it) when `conversation_id` is given. `unread_count`
        saturates at a cap (docs/DECISIONS.md)."""

    async def conversation_versions(self, conversation_ids: Collection[str]
                                    ) -> dict[str, int]:
        """The current `version` of each conversation, in one query (unknown ids are left
        out): how the hub notices changes the bus never brought (transport/repair.py)."""

    async def accepted_conversation_ids(self, user_id: str) -> list[str]:
        """The ids of the conversations the user has accepted (banned ones left out): one
        indexed query, for the fan-out of the user's presence, which goes through these
        only (docs/DECISIONS.md, "Consent")."""

    async def get_membership(self, conversation_id: str, user_id: str) -> Membership | None:
        """The user's role in the conversation and whether they accepted it."""

    async def list_members(self, conversation_id: str) -> list[Member]: ...

    async def put_member(
        self, conversation_id: str, user_id: str, role: Role, now: int
    ) -> tuple[Member, bool]:
        """Add a member (not accepted: someone else added it) or change its role; True
        when the membership was created.

        Raises:
            NotFound: unknown user; Conflict: this demotes the last owner while other
            (non-banned) members remain — decided under the conversation's lock.
        """

    async def add_member_if_absent(
        self, conversation_id: str, user_id: str, role: Role, now: int
    ) -> tuple[Member, bool]:
        """Add a member unless a membership exists (one INSERT … ON CONFLICT DO NOTHING):
        True and the new member, or False and the member as it is, whose role is left
        alone. A join must never overwrite a ban set at the same moment. The user joins by
        themselves, so a new membership is accepted."""

    async def accept_membership(self, conversation_id: str, user_id: str, now: int) -> bool:
        """Mark the membership accepted (the user took part); False when it was already,
        or there is none."""

    async def remove_member(self, conversation_id: str, user_id: str) -> bool:
        """End a membership; False when there was none.

        Raises:
            Conflict: it is the last owner's while other (non-banned) members remain —
            decided under the conversation's lock.
        """

    async def send(self, draft: MessageDraft) -> SendOutcome:
        """Store a message under the next version of its conversation (idempotent by
        `client_message_id`)."""

    async def edit(self, message_id: str, content: str, now: int) -> Message:
        """Replace the content, keep the old one in the edit history, bump the version.

        Raises:
            NotFound, Conflict: the message is gone or deleted.
        """

    async def delete(self, message_id: str, deleted_by: str, now: int) -> tuple[Message, bool]:
        """Soft-delete; False when it was deleted already (nothing changed)."""

    async def get_message(self, message_id: str) -> Message | None: ...

    async def history(self, conversation_id: str, before: int | None, limit: int) -> Page:
        """The newest `limit` messages with `seq < before`, ascending."""

    async def edit_history(self, message_id: str) -> list[tuple[int, str, int]]:
        """(version, previous content, edited_at) of each edit, oldest first."""

    # -- conversation features (PROTOCOL.md §3: search, sync, receipts, reactions) -------

    async def search(self, user_id: str, query: str, conversation_id: str | None,
                     limit: int) -> SearchPage:
        """Live messages whose content contains `query` (case-insensitive; `%`, `_` and
        `\\` literal), newest first: in `conversation_id`, or when None in the user's
        readable memberships (the most recently active, up to a cap). Bounded in the
        messages it examines, its time and the searches running at once
        (storage/search_budget.py); a search stopped by a bound says so (`truncated`).

        Raises:
            RateLimited: every search slot stayed busy for a moment.
        """

    async def sync(self, conversation_id: str, since_version: int | None, since: int | None,
                   limit: int) -> SyncPage:
        """Messages with `version > since_version` (and, with `since`, changed after that
        time), ascending by version, deleted ones included."""

    async def add_reaction(self, message_id: str, user_id: str, emoji: str,
                           now: int) -> ReactionChange:
        """Add one reaction under the conversation's next version; a no-op if present.

        Raises:
            NotFound: unknown message; Conflict: the message is deleted, or the reaction
            would pass a cap of domain/reactions.py (counted in the same transaction).
        """

    async def remove_reaction(self, message_id: str, user_id: str, emoji: str,
                              now: int) -> ReactionChange:
        """Remove one reaction under the conversation's next version; a no-op if absent.

        Raises:
            NotFound: unknown message; Conflict: the message is deleted.
        """

    async def mark_read(self, conversation_id: str, user_id: str, message_id: str,
                        now: int) -> ReceiptChange:
        """Move the member's read mark forward to the message (never back); unchanged for
        an older or equal mark, or when the user is not a member.

        Raises:
            NotFound: the message is not in the conversation.
        """

    async def mark_delivered(self, conversation_id: str, user_id: str, message_id: str,
                             now: int) -> ReceiptChange:
        """Record the first delivery of the message to the member; unchanged for a repeat,
        or when the user is not a member.

        Raises:
            NotFound: the message is not in the conversation.
        """


class CallStore(Protocol):
    """The calls of PROTOCOL.md §3 and their state (domain/calls.py), where every instance
    sees them. State changes are conditional writes, so concurrent instances never both
    win a transition."""

    async def create_call(self, call: Call) -> bool:
        """Insert a new call; False (and nothing written) when its id is taken."""

    async def get_call(self, call_id: str) -> Call | None: ...

    async def transition(self, call_id: str, expected: CallState, target: CallState,
                         now: int, end_reason: EndReason | None = None,
                         connection_id: str | None = None) -> Call | None:
        """Move the call from `expected` to `target`, stamping `answered_at` and the
        answering `connection_id`, or `ended_at` and `end_reason`; None when it was not in
        `expected` (someone else moved it)."""

    async def open_calls_of(self, user_id: str) -> list[Call]:
        """The ringing and active calls the user is a party of."""

    async def ringing_before(self, created_before: int, limit: int) -> list[Call]:
        """Ringing calls created before that time, oldest first (left behind by a stopped
        instance, whose ring timer never fired)."""

    async def open_calls(self, after: tuple[int, str] | None, limit: int) -> list[Call]:
        """Ringing and active calls ordered by (created_at, id), from just after `after`:
        pages over every open call."""

    async def list_calls(self, conversation_id: str, user_id: str, before: int | None,
                         limit: int) -> list[Call]:
        """The conversation's calls the user was a party of, created before `before`,
        newest first."""
