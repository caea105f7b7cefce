"""Rules the store decides inside the write transaction, under the conversation's lock
(adapters/sql/members.py and reactions.py): the last owner stays, and a message's
reactions stay within their caps.

On PostgreSQL two instances' transactions run at once, so each rule counts only after it
holds the conversation's row lock. Each race here is played out step by step: instance
one's transaction changes the rows the rule counts and holds the lock, uncommitted;
instance two's write starts and must wait (seen in `pg_stat_activity`); then one commits,
and two must decide on what one committed. SQLite has one writer, so there is no race to
play there; the rules themselves are checked on both databases.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hubbub.adapters.sql.schema import conversations, members, reactions
from hubbub.domain.errors import Conflict
from hubbub.domain.reactions import MAX_EMOJI_PER_MESSAGE, MAX_REACTIONS_PER_USER
from tests.contract.test_store_features import conversation, now, send, user
from tests.support.stores import SqlStores
from tests.support.waiting import until

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def group_of_owners(store: SqlStores, owners: int) -> tuple[str, list[str], str]:
    """A group with `owners` owners and one plain member: (room, owner ids, member id)."""
    first, member = await user(store), await user(store)
    others = [await user(store) for _ in range(owners - 1)]
    room = await conversation(store, first, "group", [*others, member])
    for owner in others:
        await store.put_member(room, owner, "owner", now())
    return room, [first, *others], member


async def owners_of(store: SqlStores, room: str) -> list[str]:
    return [m.user_id for m in await store.list_members(room) if m.role == "owner"]


async def fill_emoji(store: SqlStores, message_id: str, count: int) -> None:
    """`count` different emoji on the message, from as many users as the per-user cap needs."""
    reactor = ""
    for n in range(count):
        if n % MAX_REACTIONS_PER_USER == 0:
            reactor = await user(store)
        await store.add_reaction(message_id, reactor, f"e{n}", now())


# -- the rules, on both databases -----------------------------------------------------------


async def test_the_last_owner_can_neither_step_down_nor_leave(store: SqlStores) -> None:
    """With other members present the only owner's demotion and removal are Conflict."""
    room, [owner], _ = await group_of_owners(store, 1)
    with pytest.raises(Conflict):
        await store.put_member(room, owner, "admin", now())
    with pytest.raises(Conflict):
        await store.remove_member(room, owner)
    assert await owners_of(store, room) == [owner]


async def test_an_owner_alone_with_banned_members_may_leave(store: SqlStores) -> None:
    """Banned members do not count as members who would be left without an owner."""
    room, [owner], member = await group_of_owners(store, 1)
    await store.put_member(room, member, "banned", now())
    assert await store.remove_member(room, owner)


async def test_one_of_two_owners_may_go(store: SqlStores) -> None:
    """Another owner remains, so the first steps down and the second is then the last."""
    room, [first, second], _ = await group_of_owners(store, 2)
    await store.put_member(room, first, "member", now())
    with pytest.raises(Conflict):
        await store.remove_member(room, second)
    assert await owners_of(store, room) == [second]


async def test_reactions_stop_at_the_emoji_cap(store: SqlStores) -> None:
    """Past the cap a new emoji is Conflict and stores nothing; an emoji already there may
    still be added by others, and a repeat is still a no-op."""
    author = await user(store)
    room = await conversation(store, author)
    message = await send(store, room, author, "m")
    await fill_emoji(store, message.id, MAX_EMOJI_PER_MESSAGE)
    latecomer = await user(store)
    before = await store.get_message(message.id)
    assert before is not None
    with pytest.raises(Conflict, match=f"at most {MAX_EMOJI_PER_MESSAGE} different emoji"):
        await store.add_reaction(message.id, latecomer, "new", now())
    assert await store.get_message(message.id) == before
    joined = await store.add_reaction(message.id, latecomer, "e0", now())
    assert joined.changed
    repeat = await store.add_reaction(message.id, latecomer, "e0", now())
    assert not repeat.changed


async def test_reactions_stop_at_the_per_user_cap(store: SqlStores) -> None:
    """One user's reactions on one message stop at their cap; another user's do not."""
    author, reactor, other = await user(store), await user(store), await user(store)
    room = await conversation(store, author)
    message = await send(store, room, author, "m")
    for n in range(MAX_REACTIONS_PER_USER):
        await store.add_reaction(message.id, reactor, f"e{n}", now())
    with pytest.raises(Conflict, match=f"at most {MAX_REACTIONS_PER_USER} reactions per user"):
        await store.add_reaction(message.id, reactor, "one more", now())
    assert (await store.add_reaction(message.id, other, "one more", now())).changed
    stored = await store.get_message(message.id)
    assert stored is not None
    mine = [r for r in stored.reactions if reactor in r.user_ids]
    assert len(mine) == MAX_REACTIONS_PER_USER


# -- the races, on PostgreSQL ---------------------------------------------------------------


async def waiting_for_a_lock(conn: AsyncConnection) -> bool:
    """Whether a session of this database waits for a lock (instance two, blocked)."""
    found = (await conn.execute(text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    ))).scalar()
    return bool(found)


async def race(one: SqlStores, two: SqlStores, room: str,
               change: Callable[[AsyncConnection], Awaitable[None]],
               write: Awaitable[Any]) -> Any:
    """Run `change` in instance one's transaction, holding the conversation's lock; start
    `write` on instance two; once two waits for the lock, commit one. Returns what `write`
    returned or raised."""
    release, changed = asyncio.Event(), asyncio.Event()

    async def hold(conn: AsyncConnection) -> None:
        await conn.execute(select(conversations.c.id).where(conversations.c.id == room)
                           .with_for_update())
        await change(conn)
        changed.set()
        await release.wait()

    held = asyncio.ensure_future(one.writer.run(hold))
    await asyncio.wait_for(changed.wait(), 15)
    second = asyncio.ensure_future(write)
    try:
        async with one.engine.connect() as probe:
            await until(lambda: waiting_for_a_lock(probe), "instance two waits for the lock")
    finally:
        release.set()
        await held
    return (await asyncio.gather(second, return_exceptions=True))[0]


async def test_a_leave_waits_for_a_concurrent_step_down(
        two_instances: tuple[SqlStores, SqlStores]) -> None:
    """Owner A steps down in instance one's open transaction while owner B leaves through
    instance two: B's leave is decided after A's step-down committed, so B is the last
    owner and the leave is Conflict."""
    one, two = two_instances
    room, [first, second], _ = await group_of_owners(one, 2)

    async def step_down(conn: AsyncConnection) -> None:
        await conn.execute(update(members).where(
            members.c.conversation_id == room, members.c.user_id == first
        ).values(role="member"))

    outcome = await race(one, two, room, step_down, two.remove_member(room, second))
    assert isinstance(outcome, Conflict), outcome
    assert await owners_of(one, room) == [second]


async def test_a_reaction_waits_for_a_concurrent_one_at_the_cap(
        two_instances: tuple[SqlStores, SqlStores]) -> None:
    """Instance one's open transaction adds the last emoji the cap allows; instance two's
    new emoji is counted after it committed, and is Conflict."""
    one, two = two_instances
    author = await user(one)
    room = await conversation(one, author)
    message = await send(one, room, author, "m")
    await fill_emoji(one, message.id, MAX_EMOJI_PER_MESSAGE - 1)
    late = await user(one)

    async def add_the_last(conn: AsyncConnection) -> None:
        await conn.execute(reactions.insert().values(
            message_id=message.id, user_id=author, emoji="last", created_at=now()))

    outcome = await race(one, two, room, add_the_last,
                         two.add_reaction(message.id, late, "too many", now()))
    assert isinstance(outcome, Conflict), outcome
    stored = await one.get_message(message.id)
    assert stored is not None
    assert len(stored.reactions) == MAX_EMOJI_PER_MESSAGE
    assert "too many" not in {r.emoji for r in stored.reactions}

