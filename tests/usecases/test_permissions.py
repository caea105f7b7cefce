"""Who may send, edit, delete, add members and ban, per role and conversation kind
(PROTOCOL.md §5), decided by the services over a real store."""

from __future__ import annotations

import pytest

from hubbub.bus.topics import conversation_topic
from hubbub.domain.errors import BadRequest, Forbidden, NotFound
from hubbub.protocol.objects import Kind, Role
from hubbub.services.context import Actor
from tests.support.usecases import UseCases

SENDING: list[tuple[Role, bool]] = [
    ("owner", True), ("admin", True), ("moderator", True), ("member", True),
    ("read_only", False), ("banned", False),
]


async def member_with(uc: UseCases, role: Role) -> tuple[str, Actor, Actor]:
    """A group of an owner with one member given `role`: (group, owner, that member)."""
    owner, other = await uc.user("owner"), await uc.user()
    room = await uc.conversation(owner, "group", [other])
    if role != "member":
        await uc.conversations.put_member(owner, room, other.user_id, role)
    await uc.heard.take()
    return room, owner, other


@pytest.mark.parametrize(("role", "allowed"), SENDING)
async def test_sending_follows_the_role(uc: UseCases, role: Role, allowed: bool) -> None:
    """Roles with `send` store and broadcast the message; the others are refused and
    nothing is stored or heard."""
    room, _, actor = await member_with(uc, role)
    if allowed:
        outcome = await uc.send(actor, room, "hi")
        assert outcome.created
        assert await uc.heard.types(conversation_topic(room)) == ["NewMessage"]
        return
    with pytest.raises(Forbidden):
        await uc.send(actor, room, "hi")
    assert await uc.heard.take() == []
    page = await uc.stores.messages.history(room, None, 10)
    assert page.messages == []


@pytest.mark.parametrize("kind", ["group", "direct"])
async def test_outsiders_may_not_send_to_a_private_conversation(uc: UseCases,
                                                                kind: Kind) -> None:
    """A non-member sending to a group or a direct conversation is refused."""
    owner, peer, stranger = await uc.user(), await uc.user(), await uc.user()
    room = await uc.conversation(owner, kind, [peer])
    with pytest.raises(Forbidden):
        await uc.send(stranger, room, "hi")
    assert await uc.heard.take() == []


async def test_outsiders_may_not_send_to_a_channel_they_did_not_join(uc: UseCases) -> None:
    """A channel is readable by all, but sending needs membership."""
    owner, stranger = await uc.user(), await uc.user()
    room = await uc.conversation(owner, "channel")
    await uc.access.require_readable(stranger, room)
    with pytest.raises(Forbidden):
        await uc.send(stranger, room, "hi")


async def test_an_unknown_conversation_is_not_found(uc: UseCases) -> None:
    alice = await uc.user()
    with pytest.raises(NotFound):
        await uc.send(alice, "00000000-0000-0000-0000-000000000000", "hi")


async def test_only_the_sender_edits(uc: UseCases) -> None:
    """Even the owner may not edit someone else's message; the sender may."""
    room, owner, member = await member_with(uc, "member")
    sent = (await uc.send(member, room, "hi")).message
    with pytest.raises(Forbidden):
        await uc.messages.edit(owner, sent.id, "changed")
    edited = await uc.messages.edit(member, sent.id, "changed")
    assert edited.content == "changed"
    assert await uc.heard.types(conversation_topic(room)) == ["NewMessage", "MessageEdited"]


async def test_a_sender_made_read_only_can_no_longer_edit_or_delete(uc: UseCases) -> None:
    room, owner, member = await member_with(uc, "member")
    sent = (await uc.send(member, room, "hi")).message
    await uc.conversations.put_member(owner, room, member.user_id, "read_only")
    with pytest.raises(Forbidden):
        await uc.messages.edit(member, sent.id, "changed")
    with pytest.raises(Forbidden):
        await uc.messages.delete(member, sent.id)


@pytest.mark.parametrize(("role", "allowed"), [
    ("owner", True), ("admin", True), ("moderator", True), ("member", False),
    ("read_only", False),
])
async def test_deleting_others_messages_needs_moderate(uc: UseCases, role: Role,
                                                       allowed: bool) -> None:
    owner, author, actor = await uc.user(), await uc.user(), await uc.user()
    room = await uc.conversation(owner, "group", [author, actor])
    if role != "member":
        await uc.conversations.put_member(owner, room, actor.user_id, role)
    sent = (await uc.send(author, room, "hi")).message
    await uc.heard.take()
    if not allowed:
        with pytest.raises(Forbidden):
            await uc.messages.delete(actor, sent.id)
        assert await uc.heard.take() == []
        return
    deleted = await uc.messages.delete(actor, sent.id)
    assert deleted.deleted_by == actor.user_id
    [event] = await uc.heard.take(conversation_topic(room))
    assert event.type == "MessageDeleted"
    assert event.message["deleted_by"] == actor.user_id


@pytest.mark.parametrize(("actor_role", "new_role", "allowed"), [
    ("owner", "admin", True),
    ("owner", "member", True),
    ("admin", "moderator", True),
    ("admin", "admin", False),  # only owners make admins
    ("moderator", "member", True),
    ("moderator", "moderator", False),  # never at or above oneself
    ("moderator", "banned", True),
    ("member", "member", False),
    ("read_only", "member", False),
])
async def test_adding_members(uc: UseCases, actor_role: Role, new_role: Role,
                              allowed: bool) -> None:
    """Adding a member needs `moderate`, and a role below one's own (owners alone make
    admins); an add broadcasts `UserJoined`, a refused one nothing."""
    room, _, actor = await member_with(uc, actor_role)
    newcomer = await uc.user()
    await uc.heard.take()
    if not allowed:
        with pytest.raises(Forbidden):
            await uc.conversations.put_member(actor, room, newcomer.user_id, new_role)
        assert await uc.memberships.role(room, newcomer.user_id) is None
        assert await uc.heard.take(conversation_topic(room)) == []
        return
    member, created = await uc.conversations.put_member(actor, room, newcomer.user_id,
                                                        new_role)
    assert created
    assert member.role == new_role
    assert await uc.memberships.role(room, newcomer.user_id) == new_role
    expected = [] if new_role == "banned" else ["UserJoined"]
    assert await uc.heard.types(conversation_topic(room)) == expected


async def test_a_moderator_cannot_ban_an_admin(uc: UseCases) -> None:
    room, owner, moderator = await member_with(uc, "moderator")
    admin = await uc.user()
    await uc.conversations.put_member(owner, room, admin.user_id, "admin")
    with pytest.raises(Forbidden):
        await uc.conversations.put_member(moderator, room, admin.user_id, "banned")
    assert await uc.memberships.role(room, admin.user_id) == "admin"


async def test_a_banned_member_cannot_rejoin_read_or_leave(uc: UseCases) -> None:
    """A ban holds: joining a channel, reading it and leaving it (which would lift the
    ban) are all refused."""
    owner, target = await uc.user(), await uc.user()
    room = await uc.conversation(owner, "channel")
    await uc.conversations.join(target, room)
    await uc.conversations.put_member(owner, room, target.user_id, "banned")
    with pytest.raises(Forbidden):
        await uc.conversations.join(target, room)
    with pytest.raises(Forbidden):
        await uc.access.require_readable(target, room)
    with pytest.raises(Forbidden):
        await uc.conversations.remove_member(target, room, target.user_id)
    assert await uc.memberships.role(room, target.user_id) == "banned"


async def test_removing_others_needs_moderate_and_outranking(uc: UseCases) -> None:
    room, owner, member = await member_with(uc, "member")
    other = await uc.user()
    await uc.conversations.put_member(owner, room, other.user_id, "member")
    with pytest.raises(Forbidden):
        await uc.conversations.remove_member(member, room, other.user_id)
    with pytest.raises(Forbidden):
        await uc.conversations.remove_member(member, room, owner.user_id)
    await uc.conversations.remove_member(owner, room, other.user_id)
    assert await uc.memberships.role(room, other.user_id) is None
    await uc.conversations.remove_member(member, room, member.user_id)  # anyone may leave
    assert await uc.memberships.role(room, member.user_id) is None


async def test_the_members_of_a_direct_conversation_are_fixed(uc: UseCases) -> None:
    """Neither peer moderates the other, and nobody is added or removed."""
    alice, bob, carol = await uc.user(), await uc.user(), await uc.user()
    room = await uc.conversation(alice, "direct", [bob])
    assert await uc.memberships.role(room, alice.user_id) == "member"
    with pytest.raises(BadRequest):
        await uc.conversations.put_member(alice, room, carol.user_id, "member")
    with pytest.raises(BadRequest):
        await uc.conversations.remove_member(alice, room, bob.user_id)
    with pytest.raises(Forbidden):
        await uc.conversations.remove_member(carol, room, bob.user_id)


@pytest.mark.parametrize(("kind", "joins"), [("channel", True), ("group", False),
                                             ("direct", False)])
async def test_only_channels_are_joined_by_outsiders(uc: UseCases, kind: Kind,
                                                     joins: bool) -> None:
    owner, peer, stranger = await uc.user(), await uc.user(), await uc.user()
    room = await uc.conversation(owner, kind, [peer])
    await uc.heard.take()
    if not joins:
        with pytest.raises(Forbidden):
            await uc.conversations.join(stranger, room)
        assert await uc.heard.take(conversation_topic(room)) == []
        return
    _, role = await uc.conversations.join(stranger, room)
    assert role == "member"
    assert await uc.heard.types(conversation_topic(room)) == ["UserJoined"]


@pytest.mark.parametrize(("kind", "readable"), [("channel", True), ("group", False),
                                                ("direct", False)])
async def test_outsiders_read_channels_only(uc: UseCases, kind: Kind, readable: bool) -> None:
    """History and sync are open to anyone in a channel, to members elsewhere."""
    owner, peer, stranger = await uc.user(), await uc.user(), await uc.user()
    room = await uc.conversation(owner, kind, [peer])
    await uc.send(owner, room, "hi")
    if readable:
        page = await uc.messages.history(stranger, room, None, 10)
        assert [m.content for m in page.messages] == ["hi"]
        assert len((await uc.sync.sync(stranger, room, None, None, 10)).messages) == 1
        return
    with pytest.raises(Forbidden):
        await uc.messages.history(stranger, room, None, 10)
    with pytest.raises(Forbidden):
        await uc.sync.sync(stranger, room, None, None, 10)
