"""The Store seam's conversation features, run against SQLite and PostgreSQL alike:
sync paging under concurrent writes, reaction and receipt no-ops, and search access."""

from __future__ import annotations

import asyncio
import itertools
import uuid

import pytest

from hubbub.domain.errors import Conflict, NotFound
from hubbub.domain.models import Message, MessageDraft
from hubbub.protocol.objects import Kind
from tests.support.stores import SqlStores

pytestmark = pytest.mark.asyncio(loop_scope="session")

_clock = itertools.count(1_800_000_000_000_000)


def now() -> int:
    """Strictly increasing microseconds, so `since` comparisons are exact."""
    return next(_clock)


def new_id() -> str:
    return str(uuid.uuid4())


async def user(store: SqlStores) -> str:
    user_id = new_id()
    await store.upsert_user(user_id, None, now())
    return user_id


async def conversation(store: SqlStores, owner: str, kind: Kind = "channel",
                       others: list[str] | None = None) -> str:
    conversation_id = new_id()
    await store.create_conversation(conversation_id, kind, "room", owner, others or [],
                                    now())
    return conversation_id


async def send(store: SqlStores, conversation_id: str, sender: str, content: str) -> Message:
    outcome = await store.send(MessageDraft(
        id=new_id(), conversation_id=conversation_id, sender_id=sender, sender_name="u",
        content=content, parent_id=None, attachments=(), client_message_id=None,
        created_at=now(),
    ))
    message: Message = outcome.message
    return message


async def test_sync_pages_interleaved_with_writes_miss_nothing(store: SqlStores) -> None:
    """Pages read while other writes commit, resumed by `last_version`, end with exactly the
    final state: no change skipped, none repeated within what was new."""
    owner = await user(store)
    room = await conversation(store, owner)
    ids = [(await send(store, room, owner, f"seed {n}")).id for n in range(5)]
    held: dict[str, Message] = {}
    cursor = 0

    async def writes() -> None:
        for n in range(30):
            target = ids[n % len(ids)]
            step = n % 4
            if step == 0:
                ids.append((await send(store, room, owner, f"new {n}")).id)
            elif step == 1:
                await store.edit(target, f"edit {n}", now())
            elif step == 2:
                await store.add_reaction(target, owner, "👍", now())
            else:
                await store.remove_reaction(target, owner, "👍", now())
            await asyncio.sleep(0)

    async def reads() -> None:
        nonlocal cursor
        for _ in range(40):
            page = await store.sync(room, cursor, None, 3)
            versions = [m.version for m in page.messages]
            assert versions == sorted(set(versions))
            assert all(v > cursor for v in versions)
            held.update({m.id: m for m in page.messages})
            cursor = page.last_version
            await asyncio.sleep(0)

    await asyncio.gather(writes(), reads())
    while True:
        page = await store.sync(room, cursor, None, 3)
        held.update({m.id: m for m in page.messages})
        cursor = page.last_version
        if not page.has_more:
            break
    truth = (await store.history(room, None, 100)).messages
    assert sorted(held.values(), key=lambda m: m.seq) == truth
    assert cursor == (await store.get_conversation(room)).version


async def test_reaction_no_ops_take_no_version(store: SqlStores) -> None:
    """Adding a present reaction or removing an absent one changes nothing."""
    owner = await user(store)
    room = await conversation(store, owner)
    message = await send(store, room, owner, "hi")
    added = await store.add_reaction(message.id, owner, "👍", now())
    again = await store.add_reaction(message.id, owner, "👍", now())
    absent = await store.remove_reaction(message.id, owner, "🎉", now())
    assert (added.changed, again.changed, absent.changed) == (True, False, False)
    assert added.version == again.version == absent.version == message.version + 1
    assert (await store.get_conversation(room)).version == added.version


async def test_reactions_on_missing_or_deleted_messages_are_refused(store: SqlStores) -> None:
    """An unknown message is NotFound, a deleted one a Conflict."""
    owner = await user(store)
    room = await conversation(store, owner)
    message = await send(store, room, owner, "hi")
    await store.delete(message.id, owner, now())
    with pytest.raises(Conflict):
        await store.add_reaction(message.id, owner, "👍", now())
    with pytest.raises(NotFound):
        await store.remove_reaction(new_id(), owner, "👍", now())


async def test_the_read_mark_only_moves_forward(store: SqlStores) -> None:
    """An older mark after a newer one changes nothing; unread counts follow the mark."""
    owner, reader = await user(store), await user(store)
    room = await conversation(store, owner, "group", [reader])
    sent = [await send(store, room, owner, f"m{n}") for n in range(3)]
    assert (await store.mark_read(room, reader, sent[1].id, now())).changed
    assert not (await store.mark_read(room, reader, sent[0].id, now())).changed
    assert not (await store.mark_read(room, reader, sent[1].id, now())).changed
    [summary] = [s for s in await store.list_conversations(reader) if s.conversation.id == room]
    assert summary.unread_count == 1


async def test_delivery_is_recorded_once_and_only_for_members(store: SqlStores) -> None:
    """A repeat or a non-member's delivery changes nothing."""
    owner, member, stranger = await user(store), await user(store), await user(store)
    room = await conversation(store, owner, "channel", [member])
    message = await send(store, room, owner, "hi")
    assert (await store.mark_delivered(room, member, message.id, now())).changed
    assert not (await store.mark_delivered(room, member, message.id, now())).changed
    assert not (await store.mark_delivered(room, stranger, message.id, now())).changed
    with pytest.raises(NotFound):
        await store.mark_delivered(await conversation(store, owner), member, message.id, now())


async def test_search_across_conversations_keeps_to_readable_memberships(
        store: SqlStores) -> None:
    """The searcher's groups and channels match; others' groups, channels the searcher is
    banned from, and channels the searcher never joined do not."""
    owner, searcher = await user(store), await user(store)
    tag = "t" + uuid.uuid4().hex[:10]
    own_group = await conversation(store, owner, "group", [searcher])
    joined_channel = await conversation(store, owner, "channel", [searcher])
    other_group = await conversation(store, owner, "group")
    open_channel = await conversation(store, owner, "channel")
    banned_channel = await conversation(store, owner, "channel", [searcher])
    await store.put_member(banned_channel, searcher, "banned", now())
    for room in (own_group, joined_channel, other_group, open_channel, banned_channel):
        await send(store, room, owner, f"{tag} in {room}")
    found = await store.search(searcher, tag.upper(), None, 50)
    assert {m.conversation_id for m in found.messages} == {own_group, joined_channel}
    assert not found.truncated


async def test_sync_by_time_sees_reaction_changes(store: SqlStores) -> None:
    """A reaction after `since` brings an older message into a time-based sync."""
    owner = await user(store)
    room = await conversation(store, owner)
    old = await send(store, room, owner, "old")
    since = now()
    await store.add_reaction(old.id, owner, "👍", now())
    page = await store.sync(room, None, since, 10)
    assert [m.id for m in page.messages] == [old.id]
    assert page.messages[0].reactions[0].user_ids == (owner,)
