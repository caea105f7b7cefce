"""Every change of a conversation's messages takes the next conversation version, with no
gap, and `sync` returns exactly the changes after a version (PROTOCOL.md §2, §3)."""

from __future__ import annotations

import pytest

from hubbub.bus.topics import conversation_topic
from hubbub.domain.errors import BadRequest, Forbidden
from hubbub.services.context import Actor
from tests.support.usecases import UseCases


async def room_of(uc: UseCases) -> tuple[str, Actor, Actor]:
    alice, bob = await uc.user("alice"), await uc.user("bob")
    room = await uc.conversation(alice, "group", [bob])
    await uc.heard.take()
    return room, alice, bob


def event_version(message: dict[str, object]) -> int:
    """The version a change event carries (in its message for new and edited ones)."""
    inner = message.get("message")
    value = inner["version"] if isinstance(inner, dict) else message["version"]
    assert isinstance(value, int)
    return value


async def test_each_change_takes_the_next_version(uc: UseCases) -> None:
    """Send, edit, react, unreact, delete: the conversation version rises by one each
    time, and each broadcast carries the version it took, in order."""
    room, alice, bob = await room_of(uc)
    start = await uc.version(room)
    first = (await uc.send(alice, room, "one")).message
    await uc.send(bob, room, "two")
    await uc.messages.edit(alice, first.id, "one, edited")
    await uc.reactions.add(bob, first.id, "👍")
    await uc.reactions.remove(bob, first.id, "👍")
    await uc.messages.delete(alice, first.id)
    events = await uc.heard.take(conversation_topic(room))
    assert [e.type for e in events] == ["NewMessage", "NewMessage", "MessageEdited",
                                        "ReactionAdded", "ReactionRemoved", "MessageDeleted"]
    assert [event_version(e.message) for e in events] == list(range(start + 1, start + 7))
    assert [e.envelope.version for e in events] == list(range(start + 1, start + 7))
    assert await uc.version(room) == start + 6


async def test_no_ops_take_no_version(uc: UseCases) -> None:
    """A retried send, a repeated reaction, removing an absent one and deleting twice
    change nothing: no version, no broadcast."""
    room, alice, bob = await room_of(uc)
    sent = (await uc.send(alice, room, "one", key="k1")).message
    await uc.reactions.add(bob, sent.id, "👍")
    await uc.messages.delete(alice, sent.id)
    await uc.heard.take()
    before = await uc.version(room)
    await uc.send(alice, room, "one", key="k1")
    await uc.messages.delete(alice, sent.id)
    assert await uc.version(room) == before
    assert await uc.heard.take(conversation_topic(room)) == []

    live = (await uc.send(alice, room, "two")).message
    await uc.reactions.add(bob, live.id, "🎉")
    await uc.heard.take()
    before = await uc.version(room)
    assert not (await uc.reactions.add(bob, live.id, "🎉")).changed
    assert not (await uc.reactions.remove(bob, live.id, "🙃")).changed
    assert await uc.version(room) == before
    assert await uc.heard.take(conversation_topic(room)) == []


async def test_refused_changes_take_no_version(uc: UseCases) -> None:
    room, alice, bob = await room_of(uc)
    sent = (await uc.send(alice, room, "one")).message
    before = await uc.version(room)
    with pytest.raises(Forbidden):
        await uc.messages.edit(bob, sent.id, "not yours")
    with pytest.raises(BadRequest):
        await uc.send(alice, room, "")
    assert await uc.version(room) == before


async def test_sync_returns_exactly_the_missed_changes(uc: UseCases) -> None:
    """A client that saw version v gets every message changed after v once, in its latest
    state and at its latest version, and nothing it already had unchanged."""
    room, alice, bob = await room_of(uc)
    old = (await uc.send(alice, room, "old")).message
    kept = (await uc.send(alice, room, "kept")).message
    seen = await uc.version(room)
    new = (await uc.send(bob, room, "new")).message
    await uc.messages.edit(alice, old.id, "old, edited")
    await uc.messages.delete(bob, new.id)
    page = await uc.sync.sync(bob, room, seen, None, 100)
    assert [m.id for m in page.messages] == [old.id, new.id]
    assert kept.id not in [m.id for m in page.messages]
    assert page.messages[0].content == "old, edited"
    assert page.messages[1].deleted_at is not None
    assert [m.version for m in page.messages] == [seen + 2, seen + 3]
    assert page.last_version == seen + 3
    assert not page.has_more
    empty = await uc.sync.sync(bob, room, page.last_version, None, 100)
    assert empty.messages == []
    assert not empty.has_more


async def test_sync_pages_neither_skip_nor_repeat(uc: UseCases) -> None:
    """Paging with a small limit and resuming from `last_version` yields each changed
    message once, and applying the pages gives the stored state."""
    room, alice, bob = await room_of(uc)
    sent = [(await uc.send(alice, room, f"m{i}")).message
            for i in range(7)]
    for message in sent[::3]:
        await uc.messages.edit(alice, message.id, message.content + "!")
    state: dict[str, str] = {}
    version: int | None = None
    pages = 0
    while True:
        page = await uc.sync.sync(bob, room, version, None, 2)
        pages += 1
        assert len(page.messages) <= 2
        for message in page.messages:
            assert message.id not in state, "a change came twice"
            state[message.id] = message.content
        version = page.last_version
        if not page.has_more:
            break
    assert pages >= 4
    stored = await uc.stores.messages.history(room, None, 100)
    assert state == {m.id: m.content for m in stored.messages}
    assert version == await uc.version(room)


async def test_sync_needs_read_access(uc: UseCases) -> None:
    room, _, _ = await room_of(uc)
    stranger = await uc.user()
    with pytest.raises(Forbidden):
        await uc.sync.sync(stranger, room, 0, None, 10)


async def test_sync_takes_one_cursor(uc: UseCases) -> None:
    room, alice, _ = await room_of(uc)
    with pytest.raises(BadRequest, match="since"):
        await uc.sync.sync(alice, room, 0, "2026-01-01T00:00:00Z", 10)
    with pytest.raises(BadRequest, match="since"):
        await uc.sync.sync(alice, room, None, "yesterday", 10)
