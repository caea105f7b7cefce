"""Reactions (who may react, to what) and receipts (read marks move forward, the first
delivery counts) as the services decide them (PROTOCOL.md §3)."""

from __future__ import annotations

import uuid

import pytest

from hubbub.bus.topics import conversation_topic
from hubbub.domain.errors import BadRequest, Conflict, Forbidden, NotFound
from hubbub.domain.models import Message
from hubbub.services.context import Actor
from tests.support.usecases import UseCases


async def with_message(uc: UseCases) -> tuple[str, Actor, Actor, Message]:
    """A group of Alice and Bob with one message of Alice's, nothing heard yet."""
    alice, bob = await uc.user("alice"), await uc.user("bob")
    room = await uc.conversation(alice, "group", [bob])
    message = (await uc.send(alice, room, "hi")).message
    await uc.heard.take()
    return room, alice, bob, message


async def test_a_reaction_is_added_once_and_removed(uc: UseCases) -> None:
    room, _, bob, message = await with_message(uc)
    assert (await uc.reactions.add(bob, message.id, "👍")).changed
    assert not (await uc.reactions.add(bob, message.id, "👍")).changed
    assert (await uc.reactions.remove(bob, message.id, "👍")).changed
    events = await uc.heard.take(conversation_topic(room))
    assert [e.type for e in events] == ["ReactionAdded", "ReactionRemoved"]
    assert {e.message["user_id"] for e in events} == {bob.user_id}


async def test_reactions_need_send_and_a_live_message(uc: UseCases) -> None:
    """A read-only member, a stranger, a blank emoji, an unknown or deleted message: all
    refused, nothing heard."""
    room, alice, bob, message = await with_message(uc)
    stranger = await uc.user()
    await uc.conversations.put_member(alice, room, bob.user_id, "read_only")
    await uc.heard.take()
    with pytest.raises(Forbidden):
        await uc.reactions.add(bob, message.id, "👍")
    with pytest.raises(Forbidden):
        await uc.reactions.add(stranger, message.id, "👍")
    with pytest.raises(BadRequest, match="emoji"):
        await uc.reactions.add(alice, message.id, "  ")
    with pytest.raises(NotFound):
        await uc.reactions.add(alice, str(uuid.uuid4()), "👍")
    await uc.messages.delete(alice, message.id)
    await uc.heard.take()
    with pytest.raises(Conflict):
        await uc.reactions.add(alice, message.id, "👍")
    assert await uc.heard.take() == []


async def test_a_read_mark_only_moves_forward(uc: UseCases) -> None:
    """Marking a later message read broadcasts `MessageRead`; marking an earlier one (or
    the same again) changes nothing and is silent."""
    room, alice, bob, first = await with_message(uc)
    second = (await uc.send(alice, room, "two")).message
    await uc.heard.take()
    assert (await uc.receipts.mark_read(bob, room, second.id)).changed
    assert not (await uc.receipts.mark_read(bob, room, first.id)).changed
    assert not (await uc.receipts.mark_read(bob, room, second.id)).changed
    [event] = await uc.heard.take(conversation_topic(room))
    assert event.type == "MessageRead"
    assert (event.message["user_id"], event.message["message_id"]) == (bob.user_id, second.id)


async def test_the_first_delivery_counts(uc: UseCases) -> None:
    room, _, bob, message = await with_message(uc)
    assert (await uc.receipts.mark_delivered(bob, room, message.id)).changed
    assert not (await uc.receipts.mark_delivered(bob, room, message.id)).changed
    assert await uc.heard.types(conversation_topic(room)) == ["MessageDelivered"]


async def test_receipts_take_no_version(uc: UseCases) -> None:
    """Receipts are outside the conversation's version order: nothing to sync."""
    room, _, bob, message = await with_message(uc)
    before = await uc.version(room)
    await uc.receipts.mark_delivered(bob, room, message.id)
    await uc.receipts.mark_read(bob, room, message.id)
    assert await uc.version(room) == before
    assert [e.envelope.version for e in await uc.heard.take()] == [None, None]


async def test_receipts_need_read_access_and_a_message_of_the_conversation(
        uc: UseCases) -> None:
    room, alice, _, message = await with_message(uc)
    stranger = await uc.user()
    other = await uc.conversation(alice, "group")
    with pytest.raises(Forbidden):
        await uc.receipts.mark_read(stranger, room, message.id)
    with pytest.raises(NotFound):
        await uc.receipts.mark_read(alice, other, message.id)
    assert await uc.heard.take(conversation_topic(room)) == []
