"""What an instance counts for its users' inboxes (delivery/inbox.py): unread counts from
the conversation's messages (one's own never), mention counts (by id, `@all`, never one's
own, a message once), the muted flag, the newest preview, one summary per user
per interval however many messages came, the read mark's reset, the cap, and nothing more
once a conversation is removed or the user's last connection closed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from hubbub.delivery.inbox import Inbox
from hubbub.domain.inbox import UNREAD_CAP, InboxEntry
from hubbub.protocol.codec import encode
from hubbub.protocol.objects import MessageObject
from hubbub.protocol.server import MembershipUpdated, NewMessage, ReadStateChanged

pytestmark = pytest.mark.asyncio

INTERVAL = 0.01


def new_message(version: int, sender: str, content: str = "hi",
                mentions: tuple[str, ...] = ()) -> bytes:
    return encode(NewMessage(message=MessageObject(
        id=f"m{version}", conversation_id="c", sender_id=sender, sender_name=sender,
        seq=version, version=version, content=content, parent_id=None, attachments=[],
        reactions=[], client_message_id=None, created_at="2026-01-01T00:00:00.000000Z",
        edited_at=None, deleted_at=None, mentions=list(mentions))))


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.topics: list[str] = []
        self.inbox = Inbox(self.send, lambda c: self.topics.append("+" + c),
                           lambda c: self.topics.append("-" + c), INTERVAL, INTERVAL)

    def send(self, user_id: str, payload: bytes) -> None:
        self.sent.append((user_id, json.loads(payload)))

    async def flushed(self) -> dict[str, dict[str, Any]]:
        """The summaries of the next tick, by user."""
        await asyncio.sleep(INTERVAL * 5)
        out = {user: frame for user, frame in self.sent}
        assert len(out) == len(self.sent), "one summary per user per interval"
        self.sent.clear()
        return out


async def test_messages_are_counted_and_coalesced() -> None:
    r = Recorder()
    r.inbox.open("ann", [InboxEntry("c", 5, 2, 3)])
    r.inbox.open("ben", [InboxEntry("c", 5, 2, 0)])
    assert r.topics == ["+c"]
    for version in (6, 7, 8):
        r.inbox.on_new_message("c", new_message(version, "ben", "x" * 300))
    out = await r.flushed()
    assert out["ann"]["unread_count"] == 6
    assert out["ben"]["unread_count"] == 0  # its own messages
    assert out["ann"]["version"] == 8
    assert out["ann"]["last_message"]["id"] == "m8"
    assert len(out["ann"]["last_message"]["content"]) == 100
    assert out["ann"]["mention_count"] == 0


async def test_an_older_message_counts_but_keeps_the_newest_preview() -> None:
    r = Recorder()
    r.inbox.open("ann", [InboxEntry("c", 1, 2, 0)])
    r.inbox.on_new_message("c", new_message(3, "ben"))
    r.inbox.on_new_message("c", new_message(2, "ben"))
    out = await r.flushed()
    assert out["ann"]["unread_count"] == 2
    assert out["ann"]["last_message"]["id"] == "m3"


async def test_a_read_mark_resets_the_count_and_the_cap_holds() -> None:
    r = Recorder()
    r.inbox.open("ann", [InboxEntry("c", 1, 2, UNREAD_CAP - 1)])
    for version in (2, 3, 4):
        r.inbox.on_new_message("c", new_message(version, "ben"))
    assert (await r.flushed())["ann"]["unread_count"] == UNREAD_CAP
    read = encode(ReadStateChanged(conversation_id="c", message_id="m4",
                                   read_at="2026-01-01T00:00:00.000000Z", unread_count=0))
    r.inbox.on_user_event("ann", "ReadStateChanged", read)
    assert (await r.flushed())["ann"]["unread_count"] == 0
    r.inbox.on_new_message("c", new_message(5, "ben"))
    assert (await r.flushed())["ann"]["unread_count"] == 1


async def test_removed_or_closed_users_get_nothing_and_topics_are_released() -> None:
    r = Recorder()
    r.inbox.open("ann", [InboxEntry("c", 1, 2, 0)])
    r.inbox.open("ben", [InboxEntry("c", 1, 2, 0)])
    r.inbox.on_user_event("ann", "ConversationRemoved", b'{"conversation_id":"c"}')
    r.inbox.on_new_message("c", new_message(2, "cat"))
    assert set(await r.flushed()) == {"ben"}
    r.inbox.close("ben")
    assert r.topics == ["+c", "-c"]
    r.inbox.on_new_message("c", new_message(3, "cat"))
    assert await r.flushed() == {}


async def test_an_added_conversation_is_counted_from_its_announcement() -> None:
    r = Recorder()
    r.inbox.open("ann", [])
    added = (b'{"type":"ConversationAdded","conversation":{"id":"d","kind":"group",'
             b'"version":4,"member_count":3,"unread_count":2}}')
    r.inbox.on_user_event("ann", "ConversationAdded", added)
    r.inbox.on_user_event("zed", "ConversationAdded", added)  # not counted here
    r.inbox.on_new_message("d", new_message(5, "ben"))
    out = await r.flushed()
    assert set(out) == {"ann"}
    assert out["ann"]["unread_count"] == 3


async def test_mentions_by_id_and_to_everyone_are_counted_once_and_reset() -> None:
    r = Recorder()
    r.inbox.open("ann", [InboxEntry("c", 1, 3, 2, 2)])
    r.inbox.open("ben", [InboxEntry("c", 1, 3, 0, 0)])
    r.inbox.open("cat", [InboxEntry("c", 1, 3, 0, 0)])
    r.inbox.on_new_message("c", new_message(2, "ben", mentions=("ann", "ben")))
    r.inbox.on_new_message("c", new_message(3, "cat"))
    out = await r.flushed()
    assert out["ann"]["mention_count"] == 3
    assert out["ben"]["mention_count"] == 0  # one's own mention is not counted
    assert out["cat"]["mention_count"] == 0
    r.inbox.on_new_message("c", new_message(4, "ben", mentions=("@all", "ann")))
    out = await r.flushed()
    assert [out[u]["mention_count"] for u in ("ann", "ben", "cat")] == [4, 0, 1]
    r.inbox.on_user_event("ann", "ReadStateChanged", encode(ReadStateChanged(
        conversation_id="c", message_id="m4", read_at="x", unread_count=0, mention_count=0)))
    assert (await r.flushed())["ann"]["mention_count"] == 0
    r.inbox.on_new_message("c", new_message(5, "cat", mentions=("@here",)))
    out = await r.flushed()
    assert [out[u]["mention_count"] for u in ("ann", "ben", "cat")] == [1, 1, 1]


async def test_a_muted_conversation_is_counted_and_flagged() -> None:
    r = Recorder()
    r.inbox.open("ann", [InboxEntry("c", 1, 2, 0, 0, muted=True)])
    r.inbox.on_new_message("c", new_message(2, "ben", mentions=("ann",)))
    out = await r.flushed()
    assert out["ann"]["muted"] is True
    assert (out["ann"]["unread_count"], out["ann"]["mention_count"]) == (1, 1)
    r.inbox.on_user_event("ann", "MembershipUpdated", encode(MembershipUpdated(
        conversation_id="c", muted=False, pinned=True)))
    out = await r.flushed()
    assert out["ann"]["muted"] is False  # every connection's summary follows the change
    assert (out["ann"]["unread_count"], out["ann"]["mention_count"]) == (1, 1)
