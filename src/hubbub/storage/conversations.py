"""Conversations: creating them, finding them, listing a user's, and their versions."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from hubbub.domain.inbox import InboxEntry
from hubbub.domain.models import ChannelListing, Conversation, ConversationSummary
from hubbub.protocol.objects import Kind


class ConversationStore(Protocol):
    """All times are UTC microseconds."""

    async def create_conversation(
        self, conversation_id: str, kind: Kind, name: str | None, created_by: str,
        member_ids: list[str], now: int,
    ) -> tuple[Conversation, bool]:
        """Create it with the creator in `creator_role(kind)` and the others as members;
        the creator's membership is accepted, the others' are not. `created_by` "": no
        creator membership (a conversation the backend made without an owner).

        For `direct`, an existing conversation of the same pair is returned with False.
        """

    async def find_direct(self, user_id: str, other_id: str) -> Conversation | None:
        """The direct conversation of the pair, if there is one."""

    async def get_conversation(self, conversation_id: str) -> Conversation | None: ...

    async def list_conversations(self, user_id: str, conversation_id: str | None = None
                                 ) -> list[ConversationSummary]:
        """The user's conversations (banned ones left out), newest activity first; only
        that one (if the user is in it) when `conversation_id` is given. `unread_count`
        and `mention_count` saturate at a cap (docs/DECISIONS.md); pinned ones come first.
        Each summary carries the member's `mention_count`, read mark and settings (the
        per-user inbox reads its counts here)."""

    async def inbox_entries(self, user_id: str) -> list[InboxEntry]:
        """The user's conversations as its inbox starts counting from them (banned ones
        left out, no order): the list's counts without its last messages. Read on a user's
        first connection to an instance; the users arriving together share one read."""

    async def conversation_versions(self, conversation_ids: Collection[str]
                                    ) -> dict[str, int]:
        """The current `version` of each conversation, in one query (unknown ids are left
        out): how the hub notices changes the bus never brought (delivery/repair.py)."""

    async def list_channels(self, user_id: str, query: str, after: tuple[str, str] | None,
                            limit: int) -> list[ChannelListing]:
        """At most `limit` public channels (kind `channel`) whose name contains `query`
        (ignoring case, no wildcards; "" matches all), ordered by name in code point order
        then id, after the `(name, id)` of `after`; each with its member count (banned
        left out) and whether `user_id` is a member. Channels `user_id` is banned from are
        left out: the user cannot join them."""
