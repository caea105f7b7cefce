"""Consent (docs/DECISIONS.md, "Consent"): a membership someone else made starts
unaccepted and hides the user's presence; the user's own join or send accepts it."""

from __future__ import annotations

from hubbub.bus.topics import conversation_topic
from hubbub.services.context import Actor
from tests.support.usecases import UseCases


async def accepted(uc: UseCases, room: str, user: Actor) -> bool:
    [member] = [m for m in await uc.stores.members.list_members(room)
                if m.user_id == user.user_id]
    return member.accepted


async def test_an_added_member_has_not_accepted(uc: UseCases) -> None:
    """The creator has accepted; the member it added has not, and its presence is not
    shown in the conversation, nor announced there."""
    alice, bob = await uc.user(), await uc.user()
    room = await uc.conversation(alice, "group", [bob])
    assert await accepted(uc, room, alice)
    assert not await accepted(uc, room, bob)
    await uc.heard.take()
    await uc.presence.connection_opened(bob.user_id)
    assert await uc.heard.take(conversation_topic(room)) == []
    members = await uc.stores.members.list_members(room)
    assert await uc.presence.visible_online(members) == set()


async def test_sending_accepts_and_shows_presence(uc: UseCases) -> None:
    """Bob's first send accepts; being online, his presence is announced to the others."""
    alice, bob = await uc.user(), await uc.user()
    room = await uc.conversation(alice, "group", [bob])
    await uc.presence.connection_opened(bob.user_id)
    await uc.heard.take()
    await uc.send(bob, room, "hi")
    assert await accepted(uc, room, bob)
    events = await uc.heard.take(conversation_topic(room))
    assert [e.type for e in events] == ["NewMessage", "PresenceChanged"]
    assert events[1].message["user_id"] == bob.user_id
    assert events[1].envelope.exclude_user == bob.user_id
    members = await uc.stores.members.list_members(room)
    assert await uc.presence.visible_online(members) == {bob.user_id}


async def test_joining_accepts(uc: UseCases) -> None:
    alice, bob = await uc.user(), await uc.user()
    room = await uc.conversation(alice, "group", [bob])
    await uc.conversations.join(bob, room)
    assert await accepted(uc, room, bob)


async def test_opening_the_same_direct_conversation_accepts(uc: UseCases) -> None:
    """Bob creating the direct conversation Alice made finds hers, and accepts it."""
    alice, bob = await uc.user(), await uc.user()
    room = await uc.conversation(alice, "direct", [bob])
    assert not await accepted(uc, room, bob)
    found, created = await uc.conversations.create(bob, "direct", None, [alice.user_id])
    assert (found.id, created) == (room, False)
    assert await accepted(uc, room, bob)


async def test_reading_does_not_accept(uc: UseCases) -> None:
    """Reading history is no taking part."""
    alice, bob = await uc.user(), await uc.user()
    room = await uc.conversation(alice, "group", [bob])
    await uc.messages.history(bob, room, None, 10)
    await uc.sync.sync(bob, room, None, None, 10)
    assert not await accepted(uc, room, bob)
