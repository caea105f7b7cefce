"""Mentions (members only; `@here`/`@all` for moderators), the member's `mention_count`,
and the member's own settings (muted, pinned) as the services decide them."""

from __future__ import annotations

import pytest

from hubbub.bus.topics import conversation_topic, user_topic
from hubbub.domain.errors import BadRequest, Forbidden, NotFound
from hubbub.domain.limits import MAX_MENTIONS
from hubbub.domain.models import ConversationSummary
from hubbub.services.context import Actor
from tests.support.usecases import UseCases


async def summary(uc: UseCases, actor: Actor, room: str) -> ConversationSummary:
    found = await uc.conversations.summary(actor, room)
    assert found is not None
    return found


async def room_of_three(uc: UseCases) -> tuple[str, Actor, Actor, Actor]:
    """A group: Alice owns it, Bob and Carol are members."""
    alice, bob, carol = await uc.user("alice"), await uc.user("bob"), await uc.user("carol")
    room = await uc.conversation(alice, "group", [bob, carol])
    await uc.heard.take()
    return room, alice, bob, carol


async def test_a_mention_is_stored_on_the_message_and_counted(uc: UseCases) -> None:
    room, alice, bob, carol = await room_of_three(uc)
    sent = await uc.send(alice, room, "hi bob", mentions=(bob.user_id, bob.user_id))
    assert sent.message.mentions == (bob.user_id,)
    stored = await uc.stores.messages.get_message(sent.message.id)
    assert stored is not None
    assert stored.mentions == (bob.user_id,)
    [event] = await uc.heard.take(conversation_topic(room))
    assert event.message["message"]["mentions"] == [bob.user_id]
    assert (await summary(uc, bob, room)).mention_count == 1
    assert (await summary(uc, carol, room)).mention_count == 0


async def test_reading_past_a_mention_resets_it(uc: UseCases) -> None:
    room, alice, bob, _ = await room_of_three(uc)
    first = await uc.send(alice, room, "one", mentions=(bob.user_id,))
    await uc.send(alice, room, "plain")
    second = await uc.send(alice, room, "two", mentions=(bob.user_id,))
    assert (await summary(uc, bob, room)).mention_count == 2
    await uc.receipts.mark_read(bob, room, first.message.id)
    seen = await summary(uc, bob, room)
    assert (seen.mention_count, seen.last_read_seq) == (1, first.message.seq)
    await uc.receipts.mark_read(bob, room, second.message.id)
    assert (await summary(uc, bob, room)).mention_count == 0


async def test_own_and_deleted_mentions_do_not_count(uc: UseCases) -> None:
    """One's own message mentioning oneself is not unread; a deleted one counts no more."""
    room, alice, bob, _ = await room_of_three(uc)
    await uc.send(bob, room, "note to self", mentions=(bob.user_id,))
    mine = await summary(uc, bob, room)
    assert (mine.mention_count, mine.unread_count) == (0, 0)
    sent = await uc.send(alice, room, "bob?", mentions=(bob.user_id,))
    assert (await summary(uc, bob, room)).mention_count == 1
    await uc.messages.delete(alice, sent.message.id)
    assert (await summary(uc, bob, room)).mention_count == 0


async def test_a_non_member_mention_is_refused_and_nothing_stored(uc: UseCases) -> None:
    room, alice, bob, _ = await room_of_three(uc)
    stranger = await uc.user("stranger")
    before = await uc.version(room)
    with pytest.raises(BadRequest, match=r"\$\.mentions\[1\]"):
        await uc.send(alice, room, "hi", mentions=(bob.user_id, stranger.user_id))
    assert await uc.version(room) == before
    assert await uc.heard.take() == []
    page = await uc.messages.history(alice, room, None, 10)
    assert page.messages == []


async def test_a_banned_user_cannot_be_mentioned(uc: UseCases) -> None:
    room, alice, bob, _ = await room_of_three(uc)
    await uc.conversations.put_member(alice, room, bob.user_id, "banned")
    with pytest.raises(BadRequest, match=r"\$\.mentions\[0\]"):
        await uc.send(alice, room, "hi", mentions=(bob.user_id,))


@pytest.mark.parametrize("everyone", ["@here", "@all"])
async def test_everyone_mentions_need_moderate(uc: UseCases, everyone: str) -> None:
    """A member may not mention everyone; a moderator may, and it counts for every other
    member (once per message, even when also mentioned by id)."""
    room, alice, bob, carol = await room_of_three(uc)
    before = await uc.version(room)
    with pytest.raises(Forbidden, match=r"\$\.mentions\[0\]"):
        await uc.send(bob, room, "everyone!", mentions=(everyone,))
    assert await uc.version(room) == before
    await uc.conversations.put_member(alice, room, bob.user_id, "moderator")
    await uc.send(bob, room, "everyone!", mentions=(everyone, carol.user_id))
    assert (await summary(uc, carol, room)).mention_count == 1
    assert (await summary(uc, alice, room)).mention_count == 1
    assert (await summary(uc, bob, room)).mention_count == 0


def test_the_mention_bound_is_the_protocol_s() -> None:
    """The wire type bounds the count (PROTOCOL.md §3): the codec refuses more."""
    from hubbub.protocol.codec import DecodeError, decode_client_message

    frame = ('{"type":"SendMessage","conversation_id":"00000000-0000-0000-0000-000000000000",'
             '"content":"x","mentions":[' + ",".join(['"u"'] * (MAX_MENTIONS + 1)) + "]}")
    with pytest.raises(DecodeError, match=r"\$\.mentions"):
        decode_client_message(frame)


async def test_settings_are_the_member_s_own(uc: UseCases) -> None:
    room, _, bob, carol = await room_of_three(uc)
    changed = await uc.member_settings.update(bob, room, True, None)
    assert (changed.muted, changed.pinned) == (True, False)
    changed = await uc.member_settings.update(bob, room, None, True)
    assert (changed.muted, changed.pinned) == (True, True)
    others = await summary(uc, carol, room)
    assert (others.muted, others.pinned) == (False, False)
    events = await uc.heard.take(user_topic(bob.user_id))
    assert [e.message for e in events] == [
        {"type": "MembershipUpdated", "conversation_id": room, "muted": True,
         "pinned": False},
        {"type": "MembershipUpdated", "conversation_id": room, "muted": True,
         "pinned": True},
    ]


async def test_pinned_conversations_are_listed_first(uc: UseCases) -> None:
    alice = await uc.user("alice")
    older = await uc.conversation(alice)
    newer = await uc.conversation(alice)
    assert [s.conversation.id for s in await uc.conversations.list_for(alice)] == [
        newer, older]
    await uc.member_settings.update(alice, older, None, True)
    assert [s.conversation.id for s in await uc.conversations.list_for(alice)] == [
        older, newer]


async def test_settings_refused_for_strangers_and_empty_changes(uc: UseCases) -> None:
    room, alice, bob, _ = await room_of_three(uc)
    stranger = await uc.user("stranger")
    with pytest.raises(Forbidden):
        await uc.member_settings.update(stranger, room, True, None)
    with pytest.raises(NotFound):
        await uc.member_settings.update(bob, "00000000-0000-0000-0000-000000000000",
                                        True, None)
    with pytest.raises(BadRequest, match=r"\$\.muted"):
        await uc.member_settings.update(bob, room, None, None)
    await uc.conversations.put_member(alice, room, bob.user_id, "banned")
    with pytest.raises(Forbidden):
        await uc.member_settings.update(bob, room, True, None)
    assert await uc.heard.take(user_topic(bob.user_id)) == []


async def test_every_member_s_counts_in_one_read(uc: UseCases) -> None:
    """The member store's counts (what a per-user inbox event carries) match each
    member's summary; the banned are left out."""
    room, alice, bob, carol = await room_of_three(uc)
    first = await uc.send(alice, room, "bob", mentions=(bob.user_id,))
    await uc.send(alice, room, "all", mentions=("@all",))
    await uc.receipts.mark_read(carol, room, first.message.id)
    counts = await uc.stores.members.unread_counts(room)
    assert {user: (c.unread_count, c.mention_count, c.last_read_seq)
            for user, c in counts.items()} == {
        alice.user_id: (0, 0, 0), bob.user_id: (2, 2, 0),
        carol.user_id: (1, 1, first.message.seq)}
    for actor in (alice, bob, carol):
        seen = await summary(uc, actor, room)
        assert (seen.unread_count, seen.mention_count) == (
            counts[actor.user_id].unread_count, counts[actor.user_id].mention_count)
    await uc.conversations.put_member(alice, room, carol.user_id, "banned")
    assert carol.user_id not in await uc.stores.members.unread_counts(room)
