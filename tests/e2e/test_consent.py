"""Consent (docs/DECISIONS.md, "Consent"): a user added to a conversation by someone else
shows no presence there — no `PresenceChanged`, `online: false` in the member list — until
the user takes part (joins it, sends to it, opens the same direct conversation); and
conversations a user may create are limited per hour."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Backend, StartServer
from tests.support.client import ChatClient
from tests.support.cluster import deployment
from tests.support.flows import TIMEOUT, joined, send
from tests.support.server import RunningServer, User

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def members_of(server: RunningServer, viewer: User, room: str) -> dict[str, Any]:
    """`{user_id: member object}` as `viewer` lists them."""
    async with server.http(viewer) as http:
        response = await http.get(f"/api/v1/conversations/{room}/members")
    assert response.status_code == 200, response.text
    return {m["user_id"]: m for m in response.json()["members"]}


async def bob_comes_online(server: RunningServer, bob: User) -> ChatClient:
    """Bob connects, with a friend watching a room bob made (so bob accepted it): once the
    friend hears bob come online, every `PresenceChanged` for this connection has been
    published, and a watcher who did not get one will not."""
    friend = server.user("friend")
    own_room = (await server.create_conversation(bob, kind="group", name="bob's",
                                                 members=[friend]))["id"]
    watching = await joined(server, friend, own_room)
    connection = await server.connect(bob)
    await watching.expect("PresenceChanged", TIMEOUT, user_id=bob.id, status="online")
    return connection


async def test_a_stranger_who_adds_a_user_sees_no_presence_until_they_join(
        server: RunningServer) -> None:
    """Mallory adds bob to her group: while bob has not joined it she hears nothing of his
    presence and lists him `online: false`; once he joins she does both."""
    mallory, bob = server.user("mallory"), server.user("bob")
    room = (await server.create_conversation(mallory, kind="group", name="trap",
                                             members=[bob]))["id"]
    spying = await joined(server, mallory, room)
    bob_online = await bob_comes_online(server, bob)
    await spying.expect_none("PresenceChanged", within=0.5, user_id=bob.id)
    listed = (await members_of(server, mallory, room))[bob.id]
    assert (listed["accepted"], listed["online"]) == (False, False)

    reply = await bob_online.request("JoinConversation", conversation_id=room,
                                     timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    await spying.expect("PresenceChanged", TIMEOUT, user_id=bob.id, status="online")
    listed = (await members_of(server, mallory, room))[bob.id]
    assert (listed["accepted"], listed["online"]) == (True, True)
    await bob_online.close()
    await spying.expect("PresenceChanged", TIMEOUT, user_id=bob.id, status="offline")


async def test_a_direct_conversation_shows_presence_once_the_other_party_sends(
        server: RunningServer) -> None:
    """Opening a direct conversation with bob shows nothing of bob's presence; bob's first
    message there accepts it."""
    mallory, bob = server.user("mallory"), server.user("bob")
    room = (await server.create_conversation(mallory, kind="direct", members=[bob]))["id"]
    spying = await joined(server, mallory, room)
    bob_online = await bob_comes_online(server, bob)
    await spying.expect_none("PresenceChanged", within=0.5, user_id=bob.id)
    assert (await members_of(server, mallory, room))[bob.id]["online"] is False

    await send(bob_online, room, "who are you?")
    await spying.expect("PresenceChanged", TIMEOUT, user_id=bob.id, status="online")
    listed = (await members_of(server, mallory, room))[bob.id]
    assert (listed["accepted"], listed["online"]) == (True, True)


async def test_a_message_sent_over_rest_accepts(server: RunningServer) -> None:
    """`POST …/messages` is taking part as much as `SendMessage`."""
    alice, bob = server.user("alice"), server.user("bob")
    room = (await server.create_conversation(alice, kind="group", name="g",
                                             members=[bob]))["id"]
    assert (await members_of(server, alice, room))[bob.id]["accepted"] is False
    async with server.http(bob) as http:
        response = await http.post(f"/api/v1/conversations/{room}/messages",
                                   json={"content": "hi"})
    assert response.status_code == 201, response.text
    assert (await members_of(server, alice, room))[bob.id]["accepted"] is True


async def test_opening_the_same_direct_conversation_accepts_it(server: RunningServer) -> None:
    """Bob asking for the direct conversation mallory opened with him gets it (200) and has
    accepted it."""
    mallory, bob = server.user("mallory"), server.user("bob")
    room = (await server.create_conversation(mallory, kind="direct", members=[bob]))["id"]
    assert (await members_of(server, bob, room))[bob.id]["accepted"] is False
    async with server.http(bob) as http:
        response = await http.post("/api/v1/conversations",
                                   json={"kind": "direct", "member_ids": [mallory.id]})
    assert response.status_code == 200, response.text
    assert response.json()["id"] == room
    members = await members_of(server, bob, room)
    assert {uid: m["accepted"] for uid, m in members.items()} == {mallory.id: True,
                                                                  bob.id: True}


async def test_an_invited_member_reads_without_accepting(server: RunningServer) -> None:
    """Bob, added by alice, may read the history; reading is not taking part, so he stays
    unaccepted and his presence hidden."""
    alice, bob = server.user("alice"), server.user("bob")
    room = (await server.create_conversation(alice, kind="group", name="g",
                                             members=[bob]))["id"]
    author = await joined(server, alice, room)
    message = await send(author, room, "welcome")
    await server.connect(bob)
    async with server.http(bob) as http:
        response = await http.get(f"/api/v1/conversations/{room}/messages")
    assert response.status_code == 200, response.text
    assert [m["id"] for m in response.json()["messages"]] == [message["id"]]
    listed = (await members_of(server, alice, room))[bob.id]
    assert (listed["accepted"], listed["online"]) == (False, False)


async def test_a_member_added_by_put_starts_unaccepted(server: RunningServer) -> None:
    """`PUT …/members/{id}` answers `accepted: false` for the new member, and a role change
    later keeps whatever acceptance the member had."""
    alice, bob = server.user("alice"), server.user("bob")
    await server.ensure_user(bob)
    room = (await server.create_conversation(alice, kind="group", name="g"))["id"]
    path = f"/api/v1/conversations/{room}/members/{bob.id}"
    async with server.http(alice) as http:
        added = await http.put(path, json={"role": "member"})
        assert added.status_code == 201, added.text
        assert added.json()["accepted"] is False
        await joined(server, bob, room)
        changed = await http.put(path, json={"role": "moderator"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["accepted"] is True


async def test_joining_a_channel_accepts_it(server: RunningServer) -> None:
    """A user joining a channel by themselves is accepted at once."""
    alice, bob = server.user("alice"), server.user("bob")
    room = (await server.create_conversation(alice, kind="channel", name="open"))["id"]
    await joined(server, bob, room)
    listed = (await members_of(server, alice, room))[bob.id]
    assert (listed["accepted"], listed["online"]) == (True, True)


# -- the creation limit ---------------------------------------------------------------------


async def create(http: httpx.AsyncClient, name: str) -> httpx.Response:
    return await http.post("/api/v1/conversations", json={"kind": "group", "name": name})


async def test_creating_past_the_hourly_limit_gets_429(start_server: StartServer) -> None:
    """Past `conversation_burst` a create is 429 RATE_LIMITED with Retry-After, and nothing
    is created; the limits are announced in `Connected`."""
    async with start_server(conversations_per_hour=1.0, conversation_burst=2) as server:
        alice = server.user("alice")
        async with server.http(alice) as http:
            statuses = [(await create(http, f"g{n}")).status_code for n in range(2)]
            refused = await create(http, "one too many")
            listed = (await http.get("/api/v1/conversations")).json()["conversations"]
        assert statuses == [201, 201]
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["Retry-After"]) >= 3000  # one an hour: about an hour
        assert refused.json()["error"]["code"] == "RATE_LIMITED"
        assert sorted(c["name"] for c in listed) == ["g0", "g1"]
        limits = (await server.connect(alice)).connected["limits"]
        assert (limits["conversations_per_hour"], limits["conversation_burst"]) == (1.0, 2)


async def test_the_creation_limit_is_per_user_and_spares_existing_direct_ones(
        start_server: StartServer) -> None:
    """With her bucket empty alice still opens the direct conversation she has (200), but
    not a new one; bob's bucket is his own."""
    async with start_server(conversations_per_hour=1.0, conversation_burst=1) as server:
        alice, bob, carol = server.user("alice"), server.user("bob"), server.user("carol")
        for user in (bob, carol):
            await server.ensure_user(user)
        async with server.http(alice) as http:
            first = await http.post("/api/v1/conversations",
                                    json={"kind": "direct", "member_ids": [bob.id]})
            again = await http.post("/api/v1/conversations",
                                    json={"kind": "direct", "member_ids": [bob.id]})
            new = await http.post("/api/v1/conversations",
                                  json={"kind": "direct", "member_ids": [carol.id]})
        assert (first.status_code, again.status_code, new.status_code) == (201, 200, 429)
        assert again.json()["id"] == first.json()["id"]
        async with server.http(bob) as http:
            assert (await create(http, "bob's")).status_code == 201


async def test_the_creation_limit_holds_across_instances(backend: Backend) -> None:
    """The bucket is the deployment's (Redis): spent on one instance, it is spent on the
    others."""
    async with deployment(backend.database_url, 2, conversations_per_hour=1.0,
                          conversation_burst=2) as instances:
        alice = instances[0].user("alice")
        statuses = []
        for n in range(3):
            async with instances[n % len(instances)].http(alice) as http:
                statuses.append((await create(http, f"g{n}")).status_code)
        assert statuses == [201, 201, 429]
