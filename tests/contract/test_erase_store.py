"""Erasing a user's content in the store (PROTOCOL.md §8), on SQLite and PostgreSQL: more
messages than one job takes, edits, earlier deletions and reactions; every visible change
one version of its own, in order, and no content left in the rows."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from hubbub.adapters.sql.erase import CHUNK
from hubbub.adapters.sql.schema import message_edits, messages
from tests.contract.test_store_features import conversation, now, send, user
from tests.support.stores import SqlStores

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_erasure_takes_consecutive_versions_in_order_across_jobs(
        store: SqlStores) -> None:
    owner, gone = await user(store), await user(store)
    room = await conversation(store, owner, "group", [gone])
    theirs = [await send(store, room, owner, "owner's") for _ in range(2)]
    count = CHUNK + 7
    mine = await asyncio.gather(*(send(store, room, gone, f"secret {n}")
                                  for n in range(count)))
    await store.edit(mine[0].id, "secret, edited", now())
    await store.delete(mine[1].id, gone, now())
    await store.add_reaction(mine[2].id, owner, "👍", now())
    for emoji in ("🎉", "👍"):
        await store.add_reaction(theirs[0].id, gone, emoji, now())
    before = (await store.get_conversation(room)).version

    erasure = await store.erase_user_content(gone, now())

    live = count - 1  # one was deleted before
    versions = [m.version for m in erasure.tombstones]
    assert versions == list(range(before + 1, before + live + 1))
    by_seq = sorted(erasure.tombstones, key=lambda m: m.seq)
    assert [m.version for m in by_seq] == versions  # handed out oldest first
    assert all(m.content == "" and m.deleted_at is not None for m in erasure.tombstones)
    assert [(r.message_id, r.version) for r in erasure.reactions] == [
        (theirs[0].id, before + live + 1), (theirs[0].id, before + live + 2)]
    assert (await store.get_conversation(room)).version == before + live + 2
    reacted = await store.get_message(theirs[0].id)
    assert reacted is not None
    assert reacted.reactions == ()
    page = await store.sync(room, before, None, 1000)
    assert {m.id for m in page.messages} == {m.id for m in erasure.tombstones} | {theirs[0].id}
    async with store.engine.connect() as conn:
        contents = (await conn.execute(select(messages.c.content, messages.c.attachments)
                                       .where(messages.c.sender_id == gone))).all()
        edits = (await conn.execute(select(message_edits).where(
            message_edits.c.message_id == mine[0].id))).all()
    assert len(contents) == count
    assert set(contents) == {("", None)}
    assert edits == []
    untouched = await store.get_message(theirs[1].id)
    assert untouched is not None
    assert untouched.content == "owner's"


async def test_erasing_again_changes_nothing_more(store: SqlStores) -> None:
    owner, gone = await user(store), await user(store)
    room = await conversation(store, owner, "group", [gone])
    await send(store, room, gone, "once")
    assert len((await store.erase_user_content(gone, now())).tombstones) == 1
    version = (await store.get_conversation(room)).version
    again = await store.erase_user_content(gone, now())
    assert (again.tombstones, again.reactions) == ([], [])
    assert (await store.get_conversation(room)).version == version
