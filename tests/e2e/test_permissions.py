"""Who may do what (PROTOCOL.md §5), over the socket and over REST."""

from __future__ import annotations

import pytest

from tests.support.flows import (
    TIMEOUT,
    all_messages,
    assert_error,
    joined,
    roles,
    send,
    set_role,
)
from tests.support.server import RunningServer

pytestmark = pytest.mark.asyncio(loop_scope="session")


# -- send -----------------------------------------------------------------------------------


async def test_read_only_members_cannot_send(server: RunningServer) -> None:
    """`read_only` gets FORBIDDEN for SendMessage and nothing is stored or broadcast."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, kind="group", members=[bob])
    assert await set_role(server, alice, room["id"], bob, "read_only") == 200
    watcher = await joined(server, alice, room["id"])
    reader = await joined(server, bob, room["id"])
    reply = await reader.request("SendMessage", conversation_id=room["id"], content="hi",
                                 request_id="ro")
    assert_error(reply, "FORBIDDEN", request_id="ro")
    await watcher.expect_none("NewMessage", within=0.3)
    assert await all_messages(watcher, room["id"]) == []


async def test_read_only_members_still_read(server: RunningServer) -> None:
    """`read_only` joins, receives broadcasts and fetches history."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, kind="group", members=[bob])
    assert await set_role(server, alice, room["id"], bob, "read_only") == 200
    author = await joined(server, alice, room["id"])
    reader = await joined(server, bob, room["id"])
    message = await send(author, room["id"], "news")
    assert (await reader.expect("NewMessage", timeout=TIMEOUT))["message"] == message
    assert await all_messages(reader, room["id"]) == [message]


async def test_read_only_members_cannot_edit_or_delete_their_earlier_messages(
        server: RunningServer) -> None:
    """Editing and deleting one's own message need `send`, which `read_only` lost."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, kind="group", members=[bob])
    author = await joined(server, bob, room["id"])
    message = await send(author, room["id"], "before demotion")
    assert await set_role(server, alice, room["id"], bob, "read_only") == 200
    edit = await author.request("EditMessage", message_id=message["id"], content="x",
                                request_id="ro-e")
    assert_error(edit, "FORBIDDEN", request_id="ro-e")
    delete = await author.request("DeleteMessage", message_id=message["id"],
                                  request_id="ro-d")
    assert_error(delete, "FORBIDDEN", request_id="ro-d")
    assert await all_messages(author, room["id"]) == [message]


async def test_outsiders_cannot_send_to_a_channel_before_joining(
        server: RunningServer) -> None:
    """Reading a channel is public, sending to it needs membership (join first)."""
    alice, mallory = server.user(), server.user()
    room = await server.create_conversation(alice, kind="channel")
    outsider = await server.connect(mallory)
    reply = await outsider.request("SendMessage", conversation_id=room["id"], content="hi",
                                   request_id="out-s")
    assert_error(reply, "FORBIDDEN", request_id="out-s")
    await outsider.request("JoinConversation", conversation_id=room["id"])
    assert (await send(outsider, room["id"], "now a member"))["sender_id"] == mallory.id


async def test_outsiders_cannot_send_to_a_group(server: RunningServer) -> None:
    """A non-member gets FORBIDDEN for SendMessage to a group."""
    alice, mallory = server.user(), server.user()
    room = await server.create_conversation(alice, kind="group")
    outsider = await server.connect(mallory)
    reply = await outsider.request("SendMessage", conversation_id=room["id"], content="hi",
                                   request_id="out-g")
    assert_error(reply, "FORBIDDEN", request_id="out-g")


# -- join and read --------------------------------------------------------------------------


async def test_outsiders_cannot_join_a_group(server: RunningServer) -> None:
    """JoinConversation into a group one is not in is FORBIDDEN and adds no member."""
    alice, mallory = server.user(), server.user()
    room = await server.create_conversation(alice, kind="group")
    watcher = await joined(server, alice, room["id"])
    outsider = await server.connect(mallory)
    reply = await outsider.request("JoinConversation", conversation_id=room["id"],
                                   request_id="jg")
    assert_error(reply, "FORBIDDEN", request_id="jg")
    await watcher.expect_none("UserJoined", within=0.3)
    assert await roles(server, alice, room["id"]) == {alice.id: "owner"}


async def test_outsiders_cannot_join_a_direct_conversation(server: RunningServer) -> None:
    """A direct conversation belongs to its two members only."""
    alice, bob, mallory = server.user(), server.user(), server.user()
    room = await server.create_conversation(alice, kind="direct", members=[bob])
    outsider = await server.connect(mallory)
    reply = await outsider.request("JoinConversation", conversation_id=room["id"],
                                   request_id="jd")
    assert_error(reply, "FORBIDDEN", request_id="jd")


async def test_outsiders_can_join_a_channel(server: RunningServer) -> None:
    """Channels are public: a non-member's join succeeds and makes it a member."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, kind="channel")
    newcomer = await server.connect(bob)
    reply = await newcomer.request("JoinConversation", conversation_id=room["id"])
    assert reply["type"] == "ActionConfirmed", reply
    assert (await roles(server, alice, room["id"]))[bob.id] == "member"


async def test_outsiders_cannot_read_a_group(server: RunningServer) -> None:
    """FetchHistory, and REST history and details, are FORBIDDEN to non-members."""
    alice, mallory = server.user(), server.user()
    room = await server.create_conversation(alice, kind="group")
    author = await joined(server, alice, room["id"])
    await send(author, room["id"], "private")
    outsider = await server.connect(mallory)
    reply = await outsider.request("FetchHistory", conversation_id=room["id"],
                                   request_id="rg")
    assert_error(reply, "FORBIDDEN", request_id="rg")
    async with server.http(mallory) as http:
        for path in ("", "/messages", "/members"):
            response = await http.get(f"/api/v1/conversations/{room['id']}{path}")
            assert response.status_code == 403, (path, response.text)
            assert response.json()["error"]["code"] == "FORBIDDEN"
            assert "private" not in response.text


async def test_outsiders_can_read_a_channel(server: RunningServer) -> None:
    """A channel's history is readable without joining."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, kind="channel")
    author = await joined(server, alice, room["id"])
    message = await send(author, room["id"], "public")
    reader = await server.connect(bob)
    assert await all_messages(reader, room["id"]) == [message]


async def test_banned_members_cannot_read(server: RunningServer) -> None:
    """A banned user cannot fetch history, subscribe, or read over REST — even a channel."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, kind="channel", members=[bob])
    author = await joined(server, alice, room["id"])
    await send(author, room["id"], "members only now")
    assert await set_role(server, alice, room["id"], bob, "banned") == 200
    banned = await server.connect(bob)
    history = await banned.request("FetchHistory", conversation_id=room["id"],
                                   request_id="b-h")
    assert_error(history, "FORBIDDEN", request_id="b-h")
    join = await banned.request("JoinConversation", conversation_id=room["id"],
                                request_id="b-j")
    assert_error(join, "FORBIDDEN", request_id="b-j")
    async with server.http(bob) as http:
        response = await http.get(f"/api/v1/conversations/{room['id']}/messages")
    assert response.status_code == 403
    assert (await roles(server, alice, room["id"]))[bob.id] == "banned"


async def test_banned_members_cannot_send(server: RunningServer) -> None:
    """A banned user's SendMessage is FORBIDDEN."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, kind="channel", members=[bob])
    assert await set_role(server, alice, room["id"], bob, "banned") == 200
    banned = await server.connect(bob)
    reply = await banned.request("SendMessage", conversation_id=room["id"], content="let me",
                                 request_id="b-s")
    assert_error(reply, "FORBIDDEN", request_id="b-s")


async def test_a_ban_ends_the_subscription(server: RunningServer) -> None:
    """A subscribed user who is banned stops receiving the conversation's broadcasts."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, kind="channel", members=[bob])
    author = await joined(server, alice, room["id"])
    victim = await joined(server, bob, room["id"])
    assert await set_role(server, alice, room["id"], bob, "banned") == 200
    await send(author, room["id"], "after the ban")
    await author.expect("NewMessage", timeout=TIMEOUT)
    await victim.expect_none("NewMessage", within=0.5)


async def test_a_removal_ends_the_subscription_and_read_access(server: RunningServer) -> None:
    """A member removed from a group stops receiving broadcasts and cannot read it."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, kind="group", members=[bob])
    author = await joined(server, alice, room["id"])
    removed = await joined(server, bob, room["id"])
    async with server.http(alice) as http:
        response = await http.delete(f"/api/v1/conversations/{room['id']}/members/{bob.id}")
    assert response.status_code == 204
    await send(author, room["id"], "after removal")
    await author.expect("NewMessage", timeout=TIMEOUT)
    await removed.expect_none("NewMessage", within=0.5)
    reply = await removed.request("FetchHistory", conversation_id=room["id"], request_id="rm")
    assert_error(reply, "FORBIDDEN", request_id="rm")


# -- direct conversations: two peers ---------------------------------------------------------


async def test_both_members_of_a_direct_conversation_are_peers(server: RunningServer) -> None:
    """Neither the creator nor the other party is `owner`: both are `member`, in the member
    list and in each one's own view."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, kind="direct", members=[bob])
    assert room["role"] == "member"
    assert await roles(server, bob, room["id"]) == {alice.id: "member", bob.id: "member"}
    for user in (alice, bob):
        confirmed = await (await server.connect(user)).request(
            "JoinConversation", conversation_id=room["id"], timeout=TIMEOUT)
        assert confirmed["role"] == "member", confirmed


async def test_direct_peers_delete_their_own_messages_only(server: RunningServer) -> None:
    """Each party deletes its own messages; the other's — the creator's power included —
    is FORBIDDEN and stays."""
    alice, bob = server.user(), server.user()
    room = (await server.create_conversation(alice, kind="direct", members=[bob]))["id"]
    a, b = await joined(server, alice, room), await joined(server, bob, room)
    from_alice, from_bob = await send(a, room, "alice's"), await send(b, room, "bob's")
    for client, other, request_id in ((a, from_bob, "a-del"), (b, from_alice, "b-del")):
        reply = await client.request("DeleteMessage", message_id=other["id"],
                                     request_id=request_id)
        assert_error(reply, "FORBIDDEN", request_id=request_id)
    await a.expect_none("MessageDeleted", within=0.3)
    assert [m["content"] for m in await all_messages(a, room)] == ["alice's", "bob's"]
    for client, own in ((a, from_alice), (b, from_bob)):
        reply = await client.request("DeleteMessage", message_id=own["id"], timeout=TIMEOUT)
        assert reply["type"] == "ActionConfirmed", reply
    assert [m["content"] for m in await all_messages(a, room)] == ["", ""]


async def test_the_creator_of_a_direct_conversation_cannot_manage_the_other(
        server: RunningServer) -> None:
    """No role change, ban or removal of the other party: the members are fixed."""
    alice, bob = server.user(), server.user()
    room = (await server.create_conversation(alice, kind="direct", members=[bob]))["id"]
    for role in ("banned", "read_only", "owner"):
        assert await set_role(server, alice, room, bob, role) == 400
    async with server.http(alice) as http:
        removal = await http.delete(f"/api/v1/conversations/{room}/members/{bob.id}")
    assert removal.status_code == 400, removal.text
    assert await roles(server, bob, room) == {alice.id: "member", bob.id: "member"}


# -- moderation -----------------------------------------------------------------------------


async def test_members_cannot_delete_others_messages(server: RunningServer) -> None:
    """A plain member's DeleteMessage on someone else's message is FORBIDDEN."""
    alice, bob, carol = server.user(), server.user(), server.user()
    room = await server.create_conversation(alice, kind="group", members=[bob, carol])
    author = await joined(server, bob, room["id"])
    other = await joined(server, carol, room["id"])
    message = await send(author, room["id"], "mine")
    reply = await other.request("DeleteMessage", message_id=message["id"], request_id="md")
    assert_error(reply, "FORBIDDEN", request_id="md")
    await author.expect_none("MessageDeleted", within=0.3)
    assert await all_messages(author, room["id"]) == [message]


@pytest.mark.parametrize("role", ["owner", "admin", "moderator"])
async def test_moderators_delete_others_messages(server: RunningServer, role: str) -> None:
    """Every role with `moderate` may delete anyone's message; `deleted_by` names it."""
    alice, bob, carol = server.user(), server.user(), server.user()
    room = await server.create_conversation(alice, kind="group", members=[bob, carol])
    moderator_user = alice if role == "owner" else carol
    if role != "owner":
        assert await set_role(server, alice, room["id"], carol, role) == 200
    author = await joined(server, bob, room["id"])
    moderator = await joined(server, moderator_user, room["id"])
    message = await send(author, room["id"], "spam")
    reply = await moderator.request("DeleteMessage", message_id=message["id"])
    assert reply["type"] == "ActionConfirmed", reply
    event = await author.expect("MessageDeleted", timeout=TIMEOUT)
    assert event["deleted_by"] == moderator_user.id
    assert (await all_messages(author, room["id"]))[0]["content"] == ""


@pytest.mark.parametrize("actor_role", ["admin", "moderator", "member"])
async def test_only_owners_make_admins(server: RunningServer, actor_role: str) -> None:
    """Granting `admin` is refused with 403 to everyone but an owner."""
    alice, bob, carol = server.user(), server.user(), server.user()
    room = await server.create_conversation(alice, kind="group", members=[bob, carol])
    if actor_role != "member":
        assert await set_role(server, alice, room["id"], bob, actor_role) == 200
    assert await set_role(server, bob, room["id"], carol, "admin") == 403
    assert (await roles(server, alice, room["id"]))[carol.id] == "member"


async def test_an_owner_makes_an_admin(server: RunningServer) -> None:
    """An owner's PUT with role `admin` is applied."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, kind="group", members=[bob])
    assert await set_role(server, alice, room["id"], bob, "admin") == 200
    assert (await roles(server, alice, room["id"]))[bob.id] == "admin"


async def test_moderators_manage_lower_ranks(server: RunningServer) -> None:
    """A moderator restricts and bans members, but cannot touch an admin or grant its own
    rank."""
    alice, bob, carol, dave = server.user(), server.user(), server.user(), server.user()
    room = await server.create_conversation(alice, kind="group", members=[bob, carol, dave])
    assert await set_role(server, alice, room["id"], bob, "moderator") == 200
    assert await set_role(server, alice, room["id"], dave, "admin") == 200
    assert await set_role(server, bob, room["id"], carol, "read_only") == 200
    assert await set_role(server, bob, room["id"], carol, "banned") == 200
    assert await set_role(server, bob, room["id"], carol, "moderator") == 403
    assert await set_role(server, bob, room["id"], dave, "member") == 403
    assert await roles(server, alice, room["id"]) == {
        alice.id: "owner", bob.id: "moderator", carol.id: "banned", dave.id: "admin"}


async def test_members_cannot_manage_members(server: RunningServer) -> None:
    """Without `moderate`, adding, restricting or removing others is 403."""
    alice, bob, carol, dave = server.user(), server.user(), server.user(), server.user()
    room = await server.create_conversation(alice, kind="group", members=[bob, carol])
    assert await set_role(server, bob, room["id"], carol, "read_only") == 403
    assert await set_role(server, bob, room["id"], dave, "member") == 403
    async with server.http(bob) as http:
        response = await http.delete(f"/api/v1/conversations/{room['id']}/members/{carol.id}")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"
    assert dave.id not in await roles(server, alice, room["id"])


async def test_admins_cannot_remove_owners(server: RunningServer) -> None:
    """Removing a member ranked at or above oneself is refused."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, kind="group", members=[bob])
    assert await set_role(server, alice, room["id"], bob, "admin") == 200
    async with server.http(bob) as http:
        response = await http.delete(f"/api/v1/conversations/{room['id']}/members/{alice.id}")
    assert response.status_code == 403
    assert (await roles(server, bob, room["id"]))[alice.id] == "owner"


async def test_anyone_may_leave(server: RunningServer) -> None:
    """A member without `moderate` removes itself with DELETE on its own id."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, kind="group", members=[bob])
    async with server.http(bob) as http:
        response = await http.delete(f"/api/v1/conversations/{room['id']}/members/{bob.id}")
    assert response.status_code == 204
    assert bob.id not in await roles(server, alice, room["id"])


async def test_a_banned_member_cannot_lift_its_ban_by_leaving(server: RunningServer) -> None:
    """A banned user's DELETE on itself is refused, so it cannot rejoin a channel."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, kind="channel", members=[bob])
    assert await set_role(server, alice, room["id"], bob, "banned") == 200
    async with server.http(bob) as http:
        response = await http.delete(f"/api/v1/conversations/{room['id']}/members/{bob.id}")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"
    client = await server.connect(bob)
    reply = await client.request("JoinConversation", conversation_id=room["id"],
                                 request_id="rejoin")
    assert_error(reply, "FORBIDDEN", request_id="rejoin")
    assert (await roles(server, alice, room["id"]))[bob.id] == "banned"


async def test_outsiders_probing_members_get_403_not_404(server: RunningServer) -> None:
    """A non-member's DELETE is refused for lack of permission whether or not the target
    is a member, so it learns nothing about who is in a private group."""
    alice, bob, mallory, nobody = (server.user(), server.user(), server.user(),
                                   server.user())
    room = await server.create_conversation(alice, kind="group", members=[bob])
    await server.ensure_user(nobody)
    async with server.http(mallory) as http:
        for target in (bob, nobody):
            response = await http.delete(
                f"/api/v1/conversations/{room['id']}/members/{target.id}")
            assert response.status_code == 403, response.text
