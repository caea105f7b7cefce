"""Memberships: who is in a conversation, with which role, and whether they accepted it.

The rules that need the conversation's whole membership (the last owner stays) are
decided by the store, under the conversation's lock.
"""

from __future__ import annotations

from typing import Protocol

from hubbub.domain.models import Member, Membership, UnreadCounts
from hubbub.protocol.objects import Role


class MemberStore(Protocol):
    """All times are UTC microseconds."""

    async def get_membership(self, conversation_id: str, user_id: str) -> Membership | None:
        """The user's role in the conversation and whether they accepted it."""

    async def list_members(self, conversation_id: str) -> list[Member]: ...

    async def unread_counts(self, conversation_id: str) -> dict[str, UnreadCounts]:
        """Every (non-banned) member's `unread_count` and `mention_count` (each capped as
        the conversation list caps them) and read mark, in one query."""

    async def accepted_conversation_ids(self, user_id: str) -> list[str]:
        """The ids of the conversations the user has accepted (banned ones left out): one
        indexed query, for the fan-out of the user's presence, which goes through these
        only (docs/DECISIONS.md, "Consent")."""

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

    async def update_settings(self, conversation_id: str, user_id: str,
                              muted: bool | None, pinned: bool | None) -> bool:
        """Set the member's own `muted` and `pinned` (None: left as it is); False when
        there is no such membership (nothing is stored then)."""

    async def remove_member(self, conversation_id: str, user_id: str) -> bool:
        """End a membership; False when there was none.

        Raises:
            Conflict: it is the last owner's while other (non-banned) members remain —
            decided under the conversation's lock.
        """

    async def remove_all_memberships(self, user_id: str) -> list[str]:
        """End every membership of the user (an erasure), the last owner's too: the
        conversation may be left without an owner, which the backend can fix with the
        server API. A `direct` conversation it leaves is no longer the pair's (a new one
        can be made for the pair). Returns the conversations it left."""
