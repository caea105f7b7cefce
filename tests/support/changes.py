"""An in-memory `ChangeSource` (delivery/repair.py): conversations whose messages take
versions as the store's do, read with the store's `sync` semantics, for hub tests that need
a store without a database.

Writes return the change event the service would publish, so a test decides which events
the bus carries and which it loses. `hold_reads()` keeps the answers of change reads
(`changes_since`) taken from then on until `release_reads()`, each answer as it was when
read: a slow query, during which the bus keeps delivering.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Collection

import msgspec

from hubbub.bus.envelope import Envelope
from hubbub.domain.clock import format_time
from hubbub.domain.models import Message, ReactionSummary, SyncPage
from hubbub.protocol.server import MessageDeleted, MessageEdited, NewMessage, ReactionAdded
from hubbub.services.events import envelope_of
from hubbub.services.views import message_object


class MemoryChanges:
    def __init__(self) -> None:
        self._versions: dict[str, int] = {}
        self._messages: dict[str, Message] = {}
        self._ids = itertools.count(1)
        self._released: asyncio.Event | None = None
        self.change_reads = 0
        self.version_reads = 0
        self.change_reads_at_once = 0
        self._reading = 0
        self.fail_reads = False

    # -- writes, as the services make them -------------------------------------------------

    def create_conversation(self, conversation_id: str) -> None:
        self._versions[conversation_id] = 0

    def send(self, conversation_id: str, content: str) -> Envelope:
        version = self._bump(conversation_id)
        message = Message(
            id=f"m{next(self._ids)}", conversation_id=conversation_id, seq=version,
            version=version, sender_id="sender", sender_name="sender", content=content,
            parent_id=None, attachments=(), client_message_id=None, created_at=version,
        )
        self._messages[message.id] = message
        return envelope_of(NewMessage(message=message_object(message)))

    def edit(self, message_id: str, content: str) -> Envelope:
        at = self._versions[self._messages[message_id].conversation_id] + 1
        message = self._change(message_id, content=content, edited_at=at)
        return envelope_of(MessageEdited(message=message_object(message)))

    def react(self, message_id: str, user_id: str, emoji: str) -> Envelope:
        old = self._messages[message_id]
        message = self._change(message_id, reactions=(*old.reactions,
                                                      ReactionSummary(emoji, (user_id,))))
        return envelope_of(ReactionAdded(conversation_id=message.conversation_id,
                                         message_id=message_id, version=message.version,
                                         user_id=user_id, emoji=emoji))

    def delete(self, message_id: str, by: str) -> Envelope:
        conversation_id = self._messages[message_id].conversation_id
        at = self._versions[conversation_id] + 1  # times are versions here: unique, rising
        message = self._change(message_id, deleted_at=at, deleted_by=by, reactions=())
        return envelope_of(MessageDeleted(conversation_id=conversation_id,
                                          message_id=message_id, version=message.version,
                                          deleted_at=format_time(at), deleted_by=by))

    def version(self, conversation_id: str) -> int:
        return self._versions[conversation_id]

    def message(self, message_id: str) -> Message:
        return self._messages[message_id]

    # -- slow reads -----------------------------------------------------------------------

    def hold_reads(self) -> None:
        self._released = asyncio.Event()

    def release_reads(self) -> None:
        if self._released is not None:
            self._released.set()
        self._released = None

    # -- the seam -------------------------------------------------------------------------

    async def changes_since(self, conversation_id: str, version: int, limit: int) -> SyncPage:
        changed = sorted((m for m in self._messages.values()
                          if m.conversation_id == conversation_id and m.version > version),
                         key=lambda m: m.version)
        page = SyncPage(changed[:limit], len(changed) > limit,
                        changed[:limit][-1].version if changed else version)
        self.change_reads += 1
        self._reading += 1
        self.change_reads_at_once = max(self.change_reads_at_once, self._reading)
        try:
            released = self._released
            if released is not None:
                await released.wait()
            await self._answer()
        finally:
            self._reading -= 1
        return page

    async def current_versions(self, conversation_ids: Collection[str]) -> dict[str, int]:
        versions = {c: self._versions[c] for c in conversation_ids if c in self._versions}
        self.version_reads += 1
        await self._answer()
        return versions

    async def _answer(self) -> None:
        await asyncio.sleep(0)  # a query always yields to the loop
        if self.fail_reads:
            raise ConnectionError("the store is down")

    def _bump(self, conversation_id: str) -> int:
        self._versions[conversation_id] += 1
        return self._versions[conversation_id]

    def _change(self, message_id: str, **fields: object) -> Message:
        old = self._messages[message_id]
        message = msgspec.structs.replace(old, version=self._bump(old.conversation_id), **fields)
        self._messages[message_id] = message
        return message
