"""The inbox (PROTOCOL.md §4.1): what each connection hears about every conversation of its
user without joining it.

The service announces what happens to one user — added to a conversation, removed from
one, its read mark moved — with one publish on that user's topic, wherever it happens.
What happens to a conversation (a new message) is not published per member at all: each
instance derives the summaries of its own users from the conversation's stream, which it
receives once, and coalesces them per interval (delivery/inbox.py; docs/DECISIONS.md,
"The inbox", has the choice and its measured cost). `entries` is the starting point
each instance counts from when a user's first connection arrives.
"""

from __future__ import annotations

import msgspec

from hubbub.domain.clock import format_time
from hubbub.domain.inbox import InboxEntry
from hubbub.domain.models import Conversation, ReceiptChange
from hubbub.protocol.objects import Role
from hubbub.protocol.server import ConversationAdded, ConversationRemoved, ReadStateChanged
from hubbub.services.events import Events
from hubbub.services.views import conversation_object, summary_object
from hubbub.storage.conversations import ConversationStore
from hubbub.storage.members import MemberStore


class InboxService:
    def __init__(self, conversations: ConversationStore, members: MemberStore,
                 events: Events) -> None:
        self._conversations = conversations
        self._members = members
        self._events = events

    async def entries(self, user_id: str) -> list[InboxEntry]:
        """The user's conversations as counting starts from them (one query, shared with
        the users connecting meanwhile)."""
        return await self._conversations.inbox_entries(user_id)

    async def created(self, conversation: Conversation) -> None:
        """A new conversation: each member hears it with its role (one query for all;
        nothing is unread in a conversation this new)."""
        for member in await self._members.list_members(conversation.id):
            if member.role != "banned":
                self._announce(member.user_id, conversation, member.role)

    async def added(self, conversation_id: str, user_id: str, role: Role) -> None:
        """One new member hears the conversation as its list shows it (unread count and
        last message: one query), since it may join a conversation with a history."""
        found = await self._conversations.list_conversations(user_id, conversation_id)
        if found:
            self._events.to_user(user_id, ConversationAdded(conversation=summary_object(
                found[0])))
            return
        conversation = await self._conversations.get_conversation(conversation_id)
        if conversation is not None:
            self._announce(user_id, conversation, role)

    def removed(self, conversation_id: str, user_id: str) -> None:
        """The membership ended (left, removed, banned): the user's instances stop
        counting it, and its connections hear so."""
        self._events.to_user(user_id, ConversationRemoved(conversation_id=conversation_id))

    async def read(self, user_id: str, change: ReceiptChange) -> None:
        """The read mark moved: every connection of the user (its other devices) hears it
        with the unread and mention counts now (one query), and the instances count from
        that."""
        found = await self._conversations.list_conversations(user_id, change.conversation_id)
        self._events.to_user(user_id, ReadStateChanged(
            conversation_id=change.conversation_id, message_id=change.message_id,
            read_at=format_time(change.at), unread_count=found[0].unread_count if found else 0,
            mention_count=found[0].mention_count if found else 0))

    def _announce(self, user_id: str, conversation: Conversation, role: Role) -> None:
        view = msgspec.structs.replace(conversation_object(conversation, role),
                                       unread_count=0, last_message=None)
        self._events.to_user(user_id, ConversationAdded(conversation=view))

