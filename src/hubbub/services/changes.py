"""What a conversation's subscribers missed, as change events rebuilt from the store.

Redis pub/sub is at-most-once: an event published while Redis was down, or never published
because its instance crashed between commit and publish, is gone from the bus, but its
change is in the store. The hub repairs such gaps itself (delivery/repair.py) by reading
the changes after the last version it delivered, with the paging of `SyncMessages`
(PROTOCOL.md §3: each changed message once, in its latest state, at its latest version),
and delivering them as the change events below.

`Replay` is the pure rule; `ChangeFeed` is the seam the hub reads through (wired in app.py,
so the hub never sees the store).
"""

from __future__ import annotations

from collections.abc import Collection

from hubbub.bus.envelope import Envelope
from hubbub.domain.clock import format_time
from hubbub.domain.models import Message, SyncPage
from hubbub.protocol.server import MessageDeleted, MessageEdited, NewMessage, ServerMessage
from hubbub.services.events import envelope_of
from hubbub.services.views import message_object
from hubbub.storage.conversations import ConversationStore
from hubbub.storage.messages import MessageStore


class Replay:
    """The change events that bring subscribers who saw everything up to version `start`
    to the stored state, one sync page after another.

    A message is announced with `NewMessage` when it was created after `start` (its `seq`,
    the version that created it, is greater) and this replay has not announced it yet —
    a tombstone when it was deleted meanwhile; with `MessageDeleted` when it is deleted
    and the subscribers knew it; otherwise with `MessageEdited` carrying the whole message,
    which covers edits and reaction changes alike. The subscribers then hold the stored
    state. A version a message took and superseded within the replayed range appears
    nowhere (the message appears once, at its latest version): clients may see the
    versions jump there, and a `SyncMessages` over the jump returns the same state.
    """

    __slots__ = ("_announced", "after", "start")

    def __init__(self, start: int) -> None:
        self.start = start
        # Where the next page starts: the last version this replay covered.
        self.after = start
        # Messages created after `start` and already announced: a later page may list one
        # again (it changed while the replay ran), and then it is an edit.
        self._announced: set[str] = set()

    def take(self, page: SyncPage) -> list[Envelope]:
        """The events of one page (read from `after`), in version order; moves `after`."""
        events = [envelope_of(self._event(message)) for message in page.messages
                  if message.version > self.after]
        self.after = max(self.after, page.last_version)
        return events

    def _event(self, message: Message) -> ServerMessage:
        if message.seq > self.start and message.id not in self._announced:
            self._announced.add(message.id)
            return NewMessage(message=message_object(message))
        if message.deleted_at is not None and message.deleted_by is not None:
            return MessageDeleted(conversation_id=message.conversation_id,
                                  message_id=message.id, version=message.version,
                                  deleted_at=format_time(message.deleted_at),
                                  deleted_by=message.deleted_by)
        return MessageEdited(message=message_object(message))


class ChangeFeed:
    """The hub's window on the store: a conversation's changes after a version, and the
    current versions of many conversations at once."""

    def __init__(self, messages: MessageStore, conversations: ConversationStore) -> None:
        self._messages = messages
        self._conversations = conversations

    async def changes_since(self, conversation_id: str, version: int, limit: int) -> SyncPage:
        """One page of the changes after `version`, ascending (the `SyncMessages` read)."""
        return await self._messages.sync(conversation_id, version, None, limit)

    async def current_versions(self, conversation_ids: Collection[str]) -> dict[str, int]:
        """The stored version of each conversation (unknown ones are left out)."""
        return await self._conversations.conversation_versions(conversation_ids)
