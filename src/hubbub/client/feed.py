"""Every change of a joined conversation exactly once, in `version` order (PROTOCOL.md §2).

A conversation's change events carry versions from one counter with no gaps, so the feed
holds the last version it delivered per conversation and judges each event by it: older or
equal is a duplicate (dropped), the next one is delivered, a later one means something was
missed: it is held and the client syncs (`SyncMessages` from the last version) before it
goes on. While a conversation syncs (after a join, a reconnect or a gap) its live events
are held, and delivered after the synced changes, the ones the sync already covered dropped.

A synced message becomes the change event the server itself rebuilds from stored state
(services/changes.py, the same rule): `NewMessage` when it was created after the sync's
start (its `seq` is the version that created it) and not announced yet, `MessageDeleted`
when deleted, else `MessageEdited` with the whole message (edits and reactions alike). A
version superseded within a synced range is skipped; the state reached is the stored one.

Pure: no I/O, the client feeds frames in and delivers what comes out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hubbub.protocol.objects import MessageObject
from hubbub.protocol.server import (
    MessageDeleted,
    MessageEdited,
    NewMessage,
    ReactionAdded,
    ReactionRemoved,
    SyncChunk,
)

ChangeEvent = NewMessage | MessageEdited | MessageDeleted | ReactionAdded | ReactionRemoved


def position(event: ChangeEvent) -> tuple[str, int]:
    """The conversation and version of a change event."""
    if isinstance(event, NewMessage | MessageEdited):
        return event.message.conversation_id, event.message.version
    return event.conversation_id, event.version


@dataclass
class _Conversation:
    last: int | None = None  # None until the join's answer gives the starting version
    syncing: bool = True
    sync_start: int = 0
    announced: set[str] = field(default_factory=set)
    held: dict[int, ChangeEvent] = field(default_factory=dict)


class Feed:
    """The ordering state of every tracked conversation."""

    def __init__(self) -> None:
        self._conversations: dict[str, _Conversation] = {}

    def track(self, conversation_id: str) -> None:
        """Start holding a conversation's events (before its join is answered)."""
        self._conversations.setdefault(conversation_id, _Conversation())

    def hold(self, conversation_id: str) -> None:
        """Hold a tracked conversation's live events until `end_sync`."""
        self._conversations[conversation_id].syncing = True

    def forget(self, conversation_id: str) -> None:
        self._conversations.pop(conversation_id, None)

    def last_version(self, conversation_id: str) -> int | None:
        state = self._conversations.get(conversation_id)
        return None if state is None else state.last

    def tracked(self) -> list[str]:
        return list(self._conversations)

    def set_start(self, conversation_id: str, version: int) -> None:
        """The version the application's view starts at, unless it has one already."""
        state = self._conversations[conversation_id]
        if state.last is None:
            state.last = version

    def live(self, event: ChangeEvent) -> tuple[list[ChangeEvent], bool]:
        """A change event from the socket: what to deliver now, and whether a gap needs a
        sync (the caller then calls `begin_sync`)."""
        conversation_id, version = position(event)
        state = self._conversations.get(conversation_id)
        if state is None:  # not a conversation this client joined: nothing to order by
            return [event], False
        if state.last is not None and version <= state.last:
            return [], False
        state.held[version] = event
        if state.syncing or state.last is None:
            return [], False
        ready = self._drain(state)
        return ready, bool(state.held)

    def begin_sync(self, conversation_id: str) -> int:
        """Hold live events while syncing; returns the version to sync from."""
        state = self._conversations[conversation_id]
        assert state.last is not None, "set_start comes first"
        state.syncing, state.sync_start, state.announced = True, state.last, set()
        return state.last

    def synced(self, chunk: SyncChunk) -> list[ChangeEvent]:
        """The change events that one `SyncChunk` brings (in version order)."""
        state = self._conversations.get(chunk.conversation_id)
        if state is None or state.last is None:
            return []
        events: list[ChangeEvent] = []
        for message in chunk.messages:
            if message.version > state.last:
                events.append(self._rebuilt(state, message))
                state.last = message.version
        state.last = max(state.last, chunk.last_version)
        return events

    def end_sync(self, conversation_id: str) -> tuple[list[ChangeEvent], bool]:
        """The held events that follow the synced state, and whether a gap remains."""
        state = self._conversations.get(conversation_id)
        if state is None:
            return [], False
        state.syncing = False
        ready = self._drain(state)
        return ready, bool(state.held)

    @staticmethod
    def _drain(state: _Conversation) -> list[ChangeEvent]:
        assert state.last is not None
        for version in [v for v in state.held if v <= state.last]:
            del state.held[version]
        ready = []
        while state.last + 1 in state.held:
            state.last += 1
            ready.append(state.held.pop(state.last))
        return ready

    @staticmethod
    def _rebuilt(state: _Conversation, message: MessageObject) -> ChangeEvent:
        if message.seq > state.sync_start and message.id not in state.announced:
            state.announced.add(message.id)
            return NewMessage(message=message)
        if message.deleted_at is not None:
            return MessageDeleted(conversation_id=message.conversation_id,
                                  message_id=message.id, version=message.version,
                                  deleted_at=message.deleted_at, deleted_by="")
        return MessageEdited(message=message)
