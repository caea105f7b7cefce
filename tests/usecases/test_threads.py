"""Threads: a reply gives its parent `reply_count` and `last_reply_at` under a version of
its own (ThreadUpdated), kept exact when replies are deleted; a thread reads like history."""

from __future__ import annotations

import pytest

from hubbub.bus.topics import conversation_topic
from hubbub.domain.errors import BadRequest
from hubbub.domain.models import Message
from hubbub.services.context import Actor
from tests.support.usecases import UseCases


async def thread(uc: UseCases) -> tuple[str, Actor, Actor, Message]:
    """A group of Alice and Bob with one message of Alice's, nothing heard yet."""
    alice, bob = await uc.user("alice"), await uc.user("bob")
    room = await uc.conversation(alice, "group", [bob])
    parent = (await uc.send(alice, room, "topic")).message
    await uc.heard.take()
    return room, alice, bob, parent


async def stored(uc: UseCases, message_id: str) -> Message:
    found = await uc.stores.messages.get_message(message_id)
    assert found is not None
    return found


async def test_a_reply_counts_on_its_parent_under_the_next_version(uc: UseCases) -> None:
    room, _, bob, parent = await thread(uc)
    reply = (await uc.send(bob, room, "re", parent_id=parent.id)).message
    updated = await stored(uc, parent.id)
    assert (updated.reply_count, updated.last_reply_at) == (1, reply.created_at)
    assert updated.version == reply.version + 1 == await uc.version(room)
    events = await uc.heard.take(conversation_topic(room))
    assert [e.type for e in events] == ["NewMessage", "ThreadUpdated"]
    assert events[1].message["message_id"] == parent.id
    assert events[1].message["reply_count"] == 1
    assert events[1].envelope.version == updated.version
    page = await uc.sync.sync(bob, room, parent.version, None, 10)
    assert [m.id for m in page.messages] == [reply.id, parent.id]


async def test_a_deleted_reply_no_longer_counts(uc: UseCases) -> None:
    room, alice, bob, parent = await thread(uc)
    first = (await uc.send(bob, room, "one", parent_id=parent.id)).message
    second = (await uc.send(alice, room, "two", parent_id=parent.id)).message
    assert (await stored(uc, parent.id)).reply_count == 2
    await uc.messages.edit(alice, second.id, "two, edited")
    assert (await stored(uc, parent.id)).reply_count == 2  # an edit leaves the thread be
    await uc.heard.take()
    await uc.messages.delete(alice, second.id)
    after = await stored(uc, parent.id)
    assert (after.reply_count, after.last_reply_at) == (1, first.created_at)
    assert after.version == await uc.version(room)
    events = await uc.heard.take(conversation_topic(room))
    assert [e.type for e in events] == ["MessageDeleted", "ThreadUpdated"]
    await uc.messages.delete(bob, first.id)
    emptied = await stored(uc, parent.id)
    assert (emptied.reply_count, emptied.last_reply_at) == (0, None)


async def test_a_thread_pages_like_history(uc: UseCases) -> None:
    room, alice, bob, parent = await thread(uc)
    replies = [(await uc.send(bob, room, f"r{n}", parent_id=parent.id)).message
               for n in range(3)]
    await uc.send(alice, room, "elsewhere")
    page = await uc.messages.history(bob, room, None, 2, parent.id)
    assert [m.id for m in page.messages] == [r.id for r in replies[1:]]
    assert page.has_more
    older = await uc.messages.history(bob, room, page.messages[0].seq, 2, parent.id)
    assert [m.id for m in older.messages] == [replies[0].id]
    assert not older.has_more


async def test_a_thread_of_no_message_of_the_conversation_is_refused(uc: UseCases) -> None:
    _, alice, _, parent = await thread(uc)
    other = await uc.conversation(alice)
    with pytest.raises(BadRequest, match=r"\$\.parent_id"):
        await uc.messages.history(alice, other, None, 10, parent.id)
    before = await uc.version(other)
    with pytest.raises(BadRequest, match=r"\$\.parent_id"):
        await uc.send(alice, other, "re", parent_id=parent.id)
    assert await uc.version(other) == before
    assert (await stored(uc, parent.id)).reply_count == 0


async def test_erasing_a_replier_recounts_the_thread(uc: UseCases) -> None:
    """An erased user's replies become tombstones, so they no longer count; the parent
    takes a version and ThreadUpdated is heard after the deletions."""
    room, alice, bob, parent = await thread(uc)
    kept = (await uc.send(alice, room, "mine", parent_id=parent.id)).message
    await uc.send(bob, room, "his", parent_id=parent.id)
    await uc.send(bob, room, "his too", parent_id=parent.id)
    await uc.heard.take()
    erasure = await uc.stores.messages.erase_user_content(bob.user_id, kept.created_at + 1)
    uc.messages.erased(bob.user_id, erasure)
    after = await stored(uc, parent.id)
    assert (after.reply_count, after.last_reply_at) == (1, kept.created_at)
    assert after.version == await uc.version(room)
    events = await uc.heard.take(conversation_topic(room))
    assert [e.type for e in events] == ["MessageDeleted", "MessageDeleted", "ThreadUpdated"]
    assert events[-1].envelope.version == after.version
