"""The inbox's use cases (PROTOCOL.md §4.1): who hears what on their user topic when a
conversation is created, a member is added, banned or removed, and a read mark moves;
and the entries an instance starts counting from."""

from __future__ import annotations

from dataclasses import dataclass

import pytest_asyncio

from hubbub.adapters.memory.ratelimit import Unlimited
from hubbub.bus.topics import user_topic
from hubbub.services.context import Actor
from hubbub.services.conversations import ConversationService
from hubbub.services.events import Events
from hubbub.services.inbox import InboxService
from hubbub.services.receipts import ReceiptService
from tests.support.usecases import UseCases, settings


@dataclass
class Inboxed:
    """The services as app.py wires them with the inbox on."""

    uc: UseCases
    inbox: InboxService
    conversations: ConversationService
    receipts: ReceiptService

    async def room(self, owner: Actor, members: list[Actor]) -> str:
        conversation, _ = await self.conversations.create(
            owner, "group", "room", [m.user_id for m in members])
        return conversation.id


@pytest_asyncio.fixture(loop_scope="session")
async def ib(uc: UseCases) -> Inboxed:
    stores, events = uc.stores, Events(uc.bus)
    inbox = InboxService(stores.conversations, stores.members, events)
    conversations = ConversationService(
        stores.conversations, stores.members, stores.users, uc.memberships, events,
        uc.consent, Unlimited(), settings().conversation_rule, inbox=inbox)
    receipts = ReceiptService(stores.receipts, uc.access, events, inbox=inbox)
    return Inboxed(uc, inbox, conversations, receipts)


async def test_a_new_conversation_is_announced_to_each_member_with_its_role(
        ib: Inboxed) -> None:
    alice, bob = await ib.uc.user("alice"), await ib.uc.user("bob")
    room = await ib.room(alice, [bob])
    for actor, role in ((alice, "owner"), (bob, "member")):
        (event,) = await ib.uc.heard.take(user_topic(actor.user_id))
        assert event.type == "ConversationAdded"
        conversation = event.message["conversation"]
        assert conversation["id"] == room
        assert conversation["role"] == role
        assert conversation["unread_count"] == 0
        assert conversation["last_message"] is None


async def test_a_member_added_later_hears_the_history_it_has_not_read(ib: Inboxed) -> None:
    alice, carol = await ib.uc.user("alice"), await ib.uc.user("carol")
    room = await ib.room(alice, [])
    await ib.uc.send(alice, room, "one")
    await ib.uc.send(alice, room, "two")
    await ib.uc.heard.take()
    await ib.conversations.put_member(alice, room, carol.user_id, "member")
    (event,) = await ib.uc.heard.take(user_topic(carol.user_id))
    assert event.type == "ConversationAdded"
    assert event.message["conversation"]["unread_count"] == 2
    assert event.message["conversation"]["last_message"]["content"] == "two"
    (entry,) = [e for e in await ib.inbox.entries(carol.user_id) if e.conversation_id == room]
    assert entry.unread_count == 2
    assert entry.mention_count == 0


async def test_banned_and_removed_members_hear_the_removal(ib: Inboxed) -> None:
    alice, bob, dave = (await ib.uc.user("alice"), await ib.uc.user("bob"),
                        await ib.uc.user("dave"))
    room = await ib.room(alice, [bob, dave])
    await ib.uc.heard.take()
    await ib.conversations.put_member(alice, room, bob.user_id, "banned")
    await ib.conversations.remove_member(alice, room, dave.user_id)
    for actor in (bob, dave):
        (event,) = await ib.uc.heard.take(user_topic(actor.user_id))
        assert event.type == "ConversationRemoved"
        assert event.message["conversation_id"] == room
    assert await ib.uc.heard.take(user_topic(alice.user_id)) == []
    assert [e.conversation_id for e in await ib.inbox.entries(bob.user_id)] == []


async def test_a_read_mark_that_moves_tells_the_readers_devices(ib: Inboxed) -> None:
    alice, bob = await ib.uc.user("alice"), await ib.uc.user("bob")
    room = await ib.room(alice, [bob])
    first = (await ib.uc.send(alice, room, "one")).message
    last = (await ib.uc.send(alice, room, "two")).message
    await ib.uc.heard.take()
    await ib.receipts.mark_read(bob, room, first.id)
    (event,) = await ib.uc.heard.take(user_topic(bob.user_id))
    assert event.type == "ReadStateChanged"
    assert event.message["message_id"] == first.id
    assert event.message["unread_count"] == 1
    await ib.receipts.mark_read(bob, room, last.id)
    (event,) = await ib.uc.heard.take(user_topic(bob.user_id))
    assert event.message["unread_count"] == 0
    await ib.receipts.mark_read(bob, room, first.id)  # backwards: nothing moves
    assert await ib.uc.heard.take(user_topic(bob.user_id)) == []
    assert await ib.uc.heard.take(user_topic(alice.user_id)) == []


async def test_mentions_and_mute_reach_the_starting_point_and_the_read_mark(
        ib: Inboxed) -> None:
    alice, bob = await ib.uc.user("alice"), await ib.uc.user("bob")
    room = await ib.room(alice, [bob])
    first = (await ib.uc.send(alice, room, "one", mentions=(bob.user_id,))).message
    await ib.uc.send(alice, room, "two", mentions=("@all",))
    await ib.uc.member_settings.update(bob, room, True, None)
    (entry,) = [e for e in await ib.inbox.entries(bob.user_id) if e.conversation_id == room]
    assert (entry.unread_count, entry.mention_count, entry.muted) == (2, 2, True)
    await ib.uc.heard.take()
    await ib.receipts.mark_read(bob, room, first.id)
    (event,) = await ib.uc.heard.take(user_topic(bob.user_id))
    assert event.type == "ReadStateChanged"
    assert (event.message["unread_count"], event.message["mention_count"]) == (1, 1)
