"""User ids as real backends issue them (PROTOCOL.md §2): Auth0, Firebase, Clerk and Django
subjects connect and chat over real sockets, on both backends; bad ids are refused naming
the field; members need not have connected before they are added."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import uuid
from typing import Any

import httpx
import jwt
import pytest

from tests.support.flows import TIMEOUT, all_messages, assert_error, joined, send
from tests.support.server import RunningServer, User

pytestmark = pytest.mark.asyncio(loop_scope="session")


def auth0_id() -> str:
    return "auth0|" + secrets.token_hex(12)


def firebase_id() -> str:
    """Firebase uids are 28 characters of letters and digits."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(28))


def clerk_id() -> str:
    return "user_2" + secrets.token_hex(13)


def backend_user(server: RunningServer, user_id: str, name: str | None = None) -> User:
    name = name or f"n-{user_id[-6:]}"
    return User(user_id, name, server.token(user_id, name))


async def api(server: RunningServer, user: User, method: str, path: str,
              **kwargs: Any) -> httpx.Response:
    async with server.http(user) as http:
        return await http.request(method, "/api/v1" + path, **kwargs)


@pytest.mark.parametrize("make_id", [auth0_id, firebase_id, clerk_id,
                                     lambda: str(secrets.randbelow(10**9))],
                         ids=["auth0", "firebase", "clerk", "django"])
async def test_backend_subjects_connect_and_chat(server: RunningServer, make_id: Any) -> None:
    """A user of each backend's id shape connects as that id, opens a direct conversation
    with a user of another shape, and the message arrives with the ids as issued."""
    alice = backend_user(server, make_id())
    bob = backend_user(server, auth0_id() if make_id is not auth0_id else clerk_id())
    alice_ws = await server.connect(alice)
    assert alice_ws.connected["user_id"] == alice.id
    await server.ensure_user(bob)
    room = await server.create_conversation(alice, kind="direct", members=[bob])
    bob_ws = await joined(server, bob, room["id"])
    await alice_ws.request("JoinConversation", conversation_id=room["id"], timeout=TIMEOUT)
    sent = await send(alice_ws, room["id"], "hi from " + alice.id)
    assert sent["sender_id"] == alice.id
    heard = await bob_ws.expect("NewMessage", timeout=TIMEOUT)
    assert heard["message"]["sender_id"] == alice.id
    assert heard["message"]["content"] == "hi from " + alice.id
    members = await api(server, bob, "GET", f"/conversations/{room['id']}/members")
    assert {m["user_id"] for m in members.json()["members"]} == {alice.id, bob.id}


async def test_a_uuid_subject_is_lowercased_any_other_kept_as_is(
        server: RunningServer) -> None:
    """UUIDs have one spelling (lowercase); other ids keep their case: `User_2Ab` and
    `user_2ab` are two users."""
    raw = str(uuid.uuid4())
    upper = backend_user(server, raw.upper())
    assert (await server.connect(upper)).connected["user_id"] == raw
    mixed, lower = backend_user(server, "User_2Ab"), backend_user(server, "user_2ab")
    ids = {(await server.connect(u)).connected["user_id"] for u in (mixed, lower)}
    assert ids == {"User_2Ab", "user_2ab"}


async def test_a_direct_conversation_with_someone_who_never_connected(
        server: RunningServer) -> None:
    """Creating a direct conversation with a user hubbub has never seen works (it used to
    be 404); on their first connection they find it, and its history."""
    alice = backend_user(server, auth0_id())
    newcomer = backend_user(server, firebase_id(), "Nia")
    response = await api(server, alice, "POST", "/conversations",
                         json={"kind": "direct", "member_ids": [newcomer.id]})
    assert response.status_code == 201, response.text
    conversation_id = response.json()["id"]
    alice_ws = await joined(server, alice, conversation_id)
    await send(alice_ws, conversation_id, "welcome")
    listed = await api(server, newcomer, "GET", "/conversations")
    assert [c["id"] for c in listed.json()["conversations"]] == [conversation_id]
    newcomer_ws = await joined(server, newcomer, conversation_id)
    assert [m["content"] for m in await all_messages(newcomer_ws, conversation_id)] == [
        "welcome"]
    members = await api(server, alice, "GET", f"/conversations/{conversation_id}/members")
    names = {m["user_id"]: m["user_name"] for m in members.json()["members"]}
    assert names[newcomer.id] == "Nia"  # the token's name replaced the placeholder
    again = await api(server, newcomer, "POST", "/conversations",
                      json={"kind": "direct", "member_ids": [alice.id]})
    assert (again.status_code, again.json()["id"]) == (200, conversation_id)


async def test_a_member_added_before_connecting_sees_the_group(server: RunningServer) -> None:
    """`PUT …/members/{user_id}` with a Clerk id nobody has used yet: 201, and on first
    connect the group is listed and its history readable."""
    owner = backend_user(server, auth0_id())
    room = await server.create_conversation(owner, kind="group", name="team")
    owner_ws = await joined(server, owner, room["id"])
    await send(owner_ws, room["id"], "before you came")
    later = backend_user(server, clerk_id())
    added = await api(server, owner, "PUT", f"/conversations/{room['id']}/members/{later.id}",
                      json={"role": "member"})
    assert added.status_code == 201, added.text
    assert (added.json()["user_id"], added.json()["accepted"]) == (later.id, False)
    listed = await api(server, later, "GET", "/conversations")
    assert [c["id"] for c in listed.json()["conversations"]] == [room["id"]]
    later_ws = await joined(server, later, room["id"])
    assert [m["content"] for m in await all_messages(later_ws, room["id"])] == [
        "before you came"]


@pytest.mark.parametrize("bad", ["x" * 129, "has space", "tab\there", "bell\x07", "é", ""])
async def test_a_bad_user_id_over_websocket_is_refused_naming_the_field(
        server: RunningServer, bad: str) -> None:
    """`CallOffer.target_user_id` that is no user id: `BAD_REQUEST` at
    `$.target_user_id`, and the connection goes on."""
    alice = backend_user(server, auth0_id())
    room = await server.create_conversation(alice, kind="group", name="calls")
    client = await joined(server, alice, room["id"])
    reply = await client.request("CallOffer", request_id="r-bad", conversation_id=room["id"],
                                 call_id=str(uuid.uuid4()), sdp="v=0", call_type="audio",
                                 target_user_id=bad, timeout=TIMEOUT)
    assert_error(reply, "BAD_REQUEST", field="$.target_user_id", request_id="r-bad")
    assert "user id" in reply["message"] or "length" in reply["message"], reply
    assert (await client.request("Ping", timeout=TIMEOUT))["type"] == "Pong"


@pytest.mark.parametrize("bad", ["x" * 129, "has space", "nul\x00", "", 12.5, True])
async def test_a_bad_user_id_in_the_token_gets_401(server: RunningServer, bad: Any) -> None:
    """At the handshake and over REST alike: 401 naming the claim."""
    assert server.settings.jwt_secret is not None
    token = jwt.encode({"sub": bad, "exp": 4_000_000_000}, server.settings.jwt_secret)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        response = await http.get("/api/v1/users/me",
                                  headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "sub" in response.json()["error"]["message"]


async def hubbub_token(server: RunningServer, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBBUB_")}
    assert server.settings.jwt_secret is not None
    env["HUBBUB_JWT_SECRET"] = server.settings.jwt_secret
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hubbub", "token", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    assert process.returncode is not None
    return process.returncode, out.decode().strip(), err.decode()


async def test_hubbub_token_takes_a_backend_user_id(server: RunningServer) -> None:
    """`hubbub token --user-id 'auth0|…'` signs for that id; a bad one is a usage error
    naming the flag."""
    user_id = auth0_id()
    code, token, _ = await hubbub_token(server, "--user-id", user_id, "--name", "Ann")
    assert code == 0
    client = await server.connect(User(user_id, "Ann", token))
    assert (client.connected["user_id"], client.connected["user_name"]) == (user_id, "Ann")
    code, _, err = await hubbub_token(server, "--user-id", "two words")
    assert code == 2
    assert "--user-id" in err
