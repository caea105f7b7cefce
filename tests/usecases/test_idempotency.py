"""A retried send (same `client_message_id`) stores one message and gets the same answer
(PROTOCOL.md §3 SendMessage)."""

from __future__ import annotations

import asyncio

from hubbub.bus.topics import conversation_topic
from tests.support.usecases import UseCases


async def test_a_retry_returns_the_stored_message(uc: UseCases) -> None:
    """The second call with the same key creates nothing, broadcasts nothing, and returns
    the message the first stored, even if the content differs."""
    alice = await uc.user()
    room = await uc.conversation(alice)
    first = await uc.send(alice, room, "hello", key="key-1")
    second = await uc.send(alice, room, "hello again", key="key-1")
    assert first.created
    assert not second.created
    assert second.message == first.message
    assert await uc.heard.types(conversation_topic(room)) == ["NewMessage"]
    page = await uc.stores.messages.history(room, None, 10)
    assert [m.id for m in page.messages] == [first.message.id]


async def test_concurrent_retries_store_one_message(uc: UseCases) -> None:
    """Retries racing each other still store one message and all get it."""
    alice = await uc.user()
    room = await uc.conversation(alice)
    outcomes = await asyncio.gather(*(
        uc.send(alice, room, "hello", key="key-race") for _ in range(5)))
    assert sum(o.created for o in outcomes) == 1
    assert len({o.message.id for o in outcomes}) == 1
    assert await uc.heard.types(conversation_topic(room)) == ["NewMessage"]


async def test_keys_are_per_sender_and_conversation(uc: UseCases) -> None:
    """The same key from another sender, or in another conversation, is a new message."""
    alice, bob = await uc.user(), await uc.user()
    room = await uc.conversation(alice, "group", [bob])
    other = await uc.conversation(alice, "group", [bob])
    ids = {
        (await uc.send(alice, room, "a", key="same")).message.id,
        (await uc.send(bob, room, "b", key="same")).message.id,
        (await uc.send(alice, other, "c", key="same")).message.id,
    }
    assert len(ids) == 3


async def test_without_a_key_every_send_is_new(uc: UseCases) -> None:
    alice = await uc.user()
    room = await uc.conversation(alice)
    first = await uc.send(alice, room, "hello")
    second = await uc.send(alice, room, "hello")
    assert first.created
    assert second.created
    assert first.message.id != second.message.id
