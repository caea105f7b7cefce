"""The HTTP API of PROTOCOL.md §7: resources, status codes and JSON error bodies."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.flows import (
    MISSING,
    TIME,
    TIMEOUT,
    all_messages,
    assert_tombstone,
    attachment,
    joined,
    roles,
    send,
    set_role,
)
from tests.support.server import RunningServer, User

pytestmark = pytest.mark.asyncio(loop_scope="session")


def assert_error_body(response: httpx.Response, status: int, code: str) -> None:
    """§7: the status that fits and `{"error": {"code", "message"}}`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]


async def api(server: RunningServer, user: User | None, method: str, path: str,
              **kwargs: Any) -> httpx.Response:
    async with server.http(user) as http:
        return await http.request(method, "/api/v1" + path, **kwargs)


# -- health, readiness, metrics -------------------------------------------------------------


async def test_healthz_answers_ok(server: RunningServer) -> None:
    """`/healthz` is 200 `{"status": "ok"}` without credentials."""
    async with server.http() as http:
        response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_answers_ok_when_the_database_does(server: RunningServer) -> None:
    """`/readyz` is 200 while the database answers."""
    async with server.http() as http:
        response = await http.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok"


def metric(text: str, name: str, labels: str = "") -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    pattern = re.compile(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", re.MULTILINE)
    found = pattern.search(text)
    return float(found.group(1)) if found else 0.0


async def test_metrics_count_connections_messages_errors_and_commits(
        server: RunningServer) -> None:
    """`/metrics` exposes the five core series, and they move with traffic."""
    async with server.http() as http:
        before = (await http.get("/metrics")).text
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    await send(client, room["id"], "counted")
    await client.expect("NewMessage", timeout=TIMEOUT)
    await client.send_raw("not json")
    await client.expect("Error", timeout=TIMEOUT)
    async with server.http() as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text
    for name in ("hubbub_connections_open", "hubbub_messages_received_total",
                 "hubbub_messages_sent_total", "hubbub_errors_total",
                 "hubbub_send_commit_seconds", "hubbub_writer_commits_total",
                 "hubbub_writer_jobs_total", "hubbub_writer_aborted_total"):
        assert name in after, name
    assert metric(after, "hubbub_connections_open") >= 1
    received = 'hubbub_messages_received_total', '{type="SendMessage"}'
    assert metric(after, *received) >= metric(before, *received) + 1
    sent = "hubbub_messages_sent_total", '{type="NewMessage"}'
    assert metric(after, *sent) >= metric(before, *sent) + 1
    errors = "hubbub_errors_total", '{code="BAD_REQUEST"}'
    assert metric(after, *errors) >= metric(before, *errors) + 1
    commits = "hubbub_send_commit_seconds_count"
    assert metric(after, commits) >= metric(before, commits) + 1
    assert metric(after, "hubbub_writer_commits_total") >= metric(
        before, "hubbub_writer_commits_total") + 1
    assert metric(after, "hubbub_writer_jobs_total") >= metric(
        after, "hubbub_writer_commits_total")


# -- authentication and routing -------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Bearer not.a.jwt", "Basic dXNlcjpwYXNz", "Bearer"])
async def test_requests_without_a_valid_token_get_401(server: RunningServer,
                                                       header: str | None) -> None:
    """Every API route needs `Authorization: Bearer <valid jwt>`."""
    headers = {} if header is None else {"Authorization": header}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as http:
        for method, path in (("GET", "/users/me"), ("GET", "/conversations"),
                             ("POST", "/conversations"),
                             ("GET", f"/conversations/{MISSING}/messages")):
            response = await http.request(method, "/api/v1" + path)
            assert_error_body(response, 401, "UNAUTHORIZED")


async def test_an_expired_token_gets_401(server: RunningServer) -> None:
    """A token whose `exp` has passed is refused."""
    alice = server.user(ttl=-10)
    assert_error_body(await api(server, alice, "GET", "/users/me"), 401, "UNAUTHORIZED")


async def test_unknown_routes_get_a_json_404(server: RunningServer) -> None:
    """Even a path that does not exist answers in the §7 error shape."""
    alice = server.user()
    assert_error_body(await api(server, alice, "GET", "/nothing-here"), 404, "NOT_FOUND")


async def test_a_wrong_method_gets_a_json_405(server: RunningServer) -> None:
    """A method a route does not take is refused in the §7 error shape."""
    alice = server.user()
    response = await api(server, alice, "PATCH", "/conversations")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "BAD_REQUEST"


# -- users ----------------------------------------------------------------------------------


async def test_users_me_describes_the_caller(server: RunningServer) -> None:
    """`GET /users/me` returns the caller as the token names it."""
    alice = server.user("Alice Liddell")
    response = await api(server, alice, "GET", "/users/me")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == alice.id
    assert body["name"] == "Alice Liddell"
    assert TIME.match(body["created_at"])


async def test_the_display_name_follows_the_latest_token(server: RunningServer) -> None:
    """A new `name` claim renames the user."""
    alice = server.user("old name")
    await api(server, alice, "GET", "/users/me")
    renamed = User(alice.id, "new name", server.token(alice.id, "new name"))
    assert (await api(server, renamed, "GET", "/users/me")).json()["name"] == "new name"


# -- conversations --------------------------------------------------------------------------


async def test_creating_a_group_makes_the_caller_owner(server: RunningServer) -> None:
    """`POST /conversations` answers 201 with the conversation, the caller as `owner`."""
    alice, bob = server.user(), server.user()
    await server.ensure_user(bob)
    response = await api(server, alice, "POST", "/conversations",
                         json={"kind": "group", "name": "  team  ", "member_ids": [bob.id]})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["kind"] == "group"
    assert body["name"] == "team"
    assert body["created_by"] == alice.id
    assert body["role"] == "owner"
    assert body["member_count"] == 2
    assert body["version"] == 0
    assert body["unread_count"] == 0
    assert body["last_message"] is None
    assert TIME.match(body["created_at"])
    assert await roles(server, alice, body["id"]) == {alice.id: "owner", bob.id: "member"}


async def test_a_direct_conversation_is_one_per_pair(server: RunningServer) -> None:
    """A second `direct` create for the same pair — from either side — answers 200 with the
    existing conversation."""
    alice, bob = server.user(), server.user()
    await server.ensure_user(alice)
    await server.ensure_user(bob)
    first = await api(server, alice, "POST", "/conversations",
                      json={"kind": "direct", "member_ids": [bob.id]})
    assert first.status_code == 201
    assert first.json()["name"] is None
    assert first.json()["member_count"] == 2
    again = await api(server, alice, "POST", "/conversations",
                      json={"kind": "direct", "member_ids": [bob.id, alice.id]})
    reverse = await api(server, bob, "POST", "/conversations",
                        json={"kind": "direct", "member_ids": [alice.id]})
    assert again.status_code == 200
    assert reverse.status_code == 200
    assert again.json()["id"] == reverse.json()["id"] == first.json()["id"]
    assert reverse.json()["role"] == "member"


@pytest.mark.parametrize(("body", "why"), [
    ({"kind": "direct", "member_ids": []}, "no other member"),
    ({"kind": "direct", "member_ids": ["{self}"]}, "only the caller"),
    ({"kind": "direct", "member_ids": ["{other}", "{third}"]}, "two others"),
    ({"kind": "direct", "name": "dm", "member_ids": ["{other}"]}, "a named direct"),
    ({"kind": "group", "member_ids": []}, "a group without a name"),
    ({"kind": "channel", "name": "   "}, "a blank name"),
    ({"kind": "group", "name": "n" * 101}, "a name over 100 characters"),
    ({"kind": "room", "name": "x"}, "an unknown kind"),
    ({"name": "x"}, "no kind"),
    ({"kind": "group", "name": "x", "member_ids": ["has space"]}, "a member id with a space"),
    ({"kind": "group", "name": "x", "member_ids": ["x" * 129]}, "a member id over 128"),
    ({"kind": "group", "name": "x", "member_ids": ["nul\u0000"]}, "a member id with a control"),
    ({"kind": "group", "name": "x", "member_ids": [""]}, "an empty member id"),
    ({"kind": "group", "name": 5}, "a name that is not a string"),
])
async def test_bad_conversation_bodies_get_400(server: RunningServer, body: dict[str, Any],
                                               why: str) -> None:
    """Malformed creates are refused with 400 and create nothing."""
    alice, bob, carol = server.user(), server.user(), server.user()
    for user in (bob, carol):
        await server.ensure_user(user)
    ids = {"{self}": alice.id, "{other}": bob.id, "{third}": carol.id}
    if "member_ids" in body:
        body = {**body, "member_ids": [ids.get(m, m) for m in body["member_ids"]]}
    response = await api(server, alice, "POST", "/conversations", json=body)
    assert_error_body(response, 400, "BAD_REQUEST")
    assert (await api(server, alice, "GET", "/conversations")).json() == {"conversations": []}


@pytest.mark.parametrize("content", [b"{not json", b"[]", b'"group"', b""])
async def test_a_body_that_is_not_an_object_gets_400(server: RunningServer,
                                                     content: bytes) -> None:
    """Invalid JSON, or JSON that is not the expected object, is a 400."""
    alice = server.user()
    response = await api(server, alice, "POST", "/conversations", content=content,
                         headers={"Content-Type": "application/json"})
    assert_error_body(response, 400, "BAD_REQUEST")


async def test_a_member_who_never_connected_is_added(server: RunningServer) -> None:
    """Members are the backend's users: one hubbub has not seen yet is added all the same,
    under a placeholder name, not accepted yet."""
    alice = server.user()
    response = await api(server, alice, "POST", "/conversations",
                         json={"kind": "group", "name": "x", "member_ids": [MISSING]})
    assert response.status_code == 201, response.text
    listed = await api(server, alice, "GET", f"/conversations/{response.json()['id']}/members")
    member = {m["user_id"]: m for m in listed.json()["members"]}[MISSING]
    assert member["user_name"] == f"user-{MISSING[:8]}"
    assert (member["role"], member["accepted"], member["online"]) == ("member", False, False)


async def test_an_oversized_body_gets_413(server: RunningServer) -> None:
    """A body over `max_body_bytes` is refused with 413 before it is parsed."""
    alice = server.user()
    big = b'{"kind": "group", "name": "' + b"x" * server.settings.max_body_bytes + b'"}'
    response = await api(server, alice, "POST", "/conversations", content=big,
                         headers={"Content-Type": "application/json"})
    assert_error_body(response, 413, "PAYLOAD_TOO_LARGE")


async def test_the_list_is_newest_activity_first_with_the_callers_view(
        server: RunningServer) -> None:
    """`GET /conversations` lists the caller's conversations by latest activity, each with
    role, unread count and last message."""
    alice, bob = server.user(), server.user()
    first = await server.create_conversation(alice, name="first", members=[bob])
    second = await server.create_conversation(alice, name="second", members=[bob])
    author = await joined(server, bob, first["id"])
    message = await send(author, first["id"], "wake up")
    response = await api(server, alice, "GET", "/conversations")
    assert response.status_code == 200
    listed = response.json()["conversations"]
    assert [c["id"] for c in listed] == [first["id"], second["id"]]
    assert listed[0]["role"] == "owner"
    assert listed[0]["unread_count"] == 1
    assert listed[0]["last_message"] == message
    assert listed[1]["unread_count"] == 0
    assert listed[1]["last_message"] is None
    own = (await api(server, bob, "GET", "/conversations")).json()["conversations"]
    assert next(c for c in own if c["id"] == first["id"])["unread_count"] == 0


async def test_banned_conversations_are_not_listed(server: RunningServer) -> None:
    """A conversation the caller is banned from disappears from its list."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, kind="channel", members=[bob])
    assert await set_role(server, alice, room["id"], bob, "banned") == 200
    assert (await api(server, bob, "GET", "/conversations")).json() == {"conversations": []}


async def test_get_shows_a_member_its_view(server: RunningServer) -> None:
    """`GET /conversations/{id}` gives a member its role, unread count and last message."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, kind="group", members=[bob])
    author = await joined(server, alice, room["id"])
    message = await send(author, room["id"], "unread for bob")
    response = await api(server, bob, "GET", f"/conversations/{room['id']}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == room["id"]
    assert body["role"] == "member"
    assert body["unread_count"] == 1
    assert body["last_message"] == message
    assert body["version"] == message["version"]


async def test_get_shows_a_channel_to_anyone_without_a_member_view(
        server: RunningServer) -> None:
    """A non-member may read a channel's details, without role, unread count or last
    message."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, kind="channel")
    response = await api(server, bob, "GET", f"/conversations/{room['id']}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == room["id"]
    assert "role" not in body
    assert "unread_count" not in body
    assert "last_message" not in body


async def test_get_of_an_unknown_or_malformed_id(server: RunningServer) -> None:
    """An unknown id is 404; an id that is not a lowercase UUID is 400."""
    alice = server.user()
    assert_error_body(await api(server, alice, "GET", f"/conversations/{MISSING}"), 404,
                      "NOT_FOUND")
    assert_error_body(await api(server, alice, "GET", "/conversations/general"), 400,
                      "BAD_REQUEST")
    upper = "ABCDEF00-0000-4000-8000-00000000000A"
    assert_error_body(await api(server, alice, "GET", f"/conversations/{upper}"), 400,
                      "BAD_REQUEST")


# -- members --------------------------------------------------------------------------------


async def test_members_are_listed_with_role_and_presence(server: RunningServer) -> None:
    """`GET …/members` lists each member's id, name, role, join time, whether it accepted
    and whether online."""
    alice, bob = server.user("alice"), server.user("bob")
    room = await server.create_conversation(alice, kind="group", members=[bob])
    await joined(server, bob, room["id"])
    response = await api(server, alice, "GET", f"/conversations/{room['id']}/members")
    assert response.status_code == 200
    members = {m["user_id"]: m for m in response.json()["members"]}
    assert set(members) == {alice.id, bob.id}
    assert members[alice.id]["user_name"] == "alice"
    assert members[alice.id]["role"] == "owner"
    assert members[alice.id]["accepted"] is True
    assert members[alice.id]["online"] is False
    assert members[bob.id]["role"] == "member"
    assert members[bob.id]["accepted"] is True
    assert members[bob.id]["online"] is True
    assert TIME.match(members[bob.id]["joined_at"])


async def test_adding_a_member_is_201_and_announced(server: RunningServer) -> None:
    """`PUT …/members/{id}` adds a new member (201) and subscribers hear `UserJoined`."""
    alice, bob = server.user(), server.user("bob")
    room = await server.create_conversation(alice, kind="group")
    watcher = await joined(server, alice, room["id"])
    await server.ensure_user(bob)
    response = await api(server, alice, "PUT", f"/conversations/{room['id']}/members/{bob.id}",
                         json={"role": "member"})
    assert response.status_code == 201
    assert response.json()["user_id"] == bob.id
    assert response.json()["role"] == "member"
    event = await watcher.expect("UserJoined", timeout=TIMEOUT)
    assert event["user_id"] == bob.id
    assert event["user_name"] == "bob"


async def test_changing_a_role_is_200_and_announces_nothing(server: RunningServer) -> None:
    """A role change of an existing member answers 200 without a `UserJoined`."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, kind="group", members=[bob])
    watcher = await joined(server, alice, room["id"])
    response = await api(server, alice, "PUT", f"/conversations/{room['id']}/members/{bob.id}",
                         json={"role": "moderator"})
    assert response.status_code == 200
    assert response.json()["role"] == "moderator"
    await watcher.expect_none("UserJoined", within=0.3)


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"role": "god"}, 400, "BAD_REQUEST"),
    ({}, 400, "BAD_REQUEST"),
    ({"role": None}, 400, "BAD_REQUEST"),
])
async def test_bad_member_bodies(server: RunningServer, body: dict[str, Any], status: int,
                                 code: str) -> None:
    """A role outside the §5 table, or none, is a 400."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, kind="group", members=[bob])
    response = await api(server, alice, "PUT", f"/conversations/{room['id']}/members/{bob.id}",
                         json=body)
    assert_error_body(response, status, code)
    assert (await roles(server, alice, room["id"]))[bob.id] == "member"


async def test_adding_a_new_user_works_and_to_an_unknown_conversation_is_404(
        server: RunningServer) -> None:
    """`PUT …/members/{id}` adds a user hubbub has not seen (201); the conversation must
    exist; a user id that is no user id of §2 is 400 naming it."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, kind="group")
    await server.ensure_user(bob)
    response = await api(server, alice, "PUT", f"/conversations/{room['id']}/members/{MISSING}",
                         json={"role": "member"})
    assert response.status_code == 201, response.text
    assert response.json()["user_id"] == MISSING
    refused = await api(server, alice, "PUT", f"/conversations/{room['id']}/members/{'x' * 129}",
                        json={"role": "member"})
    assert_error_body(refused, 400, "BAD_REQUEST")
    assert "user_id" in refused.json()["error"]["message"]
    spaced = await api(server, alice, "POST", "/conversations",
                       json={"kind": "group", "name": "x", "member_ids": ["a b"]})
    assert spaced.json()["error"]["message"] == (
        "Expected a user id: 1-128 printable ASCII characters without spaces - at "
        "`$.member_ids[0]`")
    assert_error_body(await api(server, alice, "PUT",
                                f"/conversations/{MISSING}/members/{bob.id}",
                                json={"role": "member"}), 404, "NOT_FOUND")


async def test_direct_members_are_fixed(server: RunningServer) -> None:
    """Adding to or removing from a `direct` conversation is a 400."""
    alice, bob, carol = server.user(), server.user(), server.user()
    room = await server.create_conversation(alice, kind="direct", members=[bob])
    await server.ensure_user(carol)
    assert_error_body(await api(server, alice, "PUT",
                                f"/conversations/{room['id']}/members/{carol.id}",
                                json={"role": "member"}), 400, "BAD_REQUEST")
    assert_error_body(await api(server, alice, "DELETE",
                                f"/conversations/{room['id']}/members/{bob.id}"),
                      400, "BAD_REQUEST")
    assert await roles(server, alice, room["id"]) == {alice.id: "member", bob.id: "member"}


async def test_removing_a_non_member_is_404(server: RunningServer) -> None:
    """A moderator's DELETE of someone who is not a member is 404."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, kind="group")
    await server.ensure_user(bob)
    assert_error_body(await api(server, alice, "DELETE",
                                f"/conversations/{room['id']}/members/{bob.id}"),
                      404, "NOT_FOUND")


async def test_the_last_owner_cannot_leave_or_step_down(server: RunningServer) -> None:
    """Removing or demoting the only owner while others remain is a 409: nobody could make
    admins or owners again."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, kind="group", members=[bob])
    path = f"/conversations/{room['id']}/members/{alice.id}"
    assert_error_body(await api(server, alice, "DELETE", path), 409, "CONFLICT")
    assert_error_body(await api(server, alice, "PUT", path, json={"role": "admin"}), 409,
                      "CONFLICT")
    assert (await roles(server, alice, room["id"]))[alice.id] == "owner"


async def test_an_owner_leaves_once_another_owner_exists(server: RunningServer) -> None:
    """After making a second owner, the first may leave (204)."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, kind="group", members=[bob])
    assert await set_role(server, alice, room["id"], bob, "owner") == 200
    response = await api(server, alice, "DELETE",
                         f"/conversations/{room['id']}/members/{alice.id}")
    assert response.status_code == 204
    assert await roles(server, bob, room["id"]) == {bob.id: "owner"}


async def test_a_lone_owner_may_leave(server: RunningServer) -> None:
    """An owner who is the only member may leave."""
    alice = server.user()
    room = await server.create_conversation(alice, kind="group")
    response = await api(server, alice, "DELETE",
                         f"/conversations/{room['id']}/members/{alice.id}")
    assert response.status_code == 204


# -- messages -------------------------------------------------------------------------------


async def test_posting_a_message_broadcasts_it(server: RunningServer) -> None:
    """`POST …/messages` answers 201 with the message and subscribers get `NewMessage`,
    exactly as for SendMessage."""
    alice, bob = server.user("bot"), server.user()
    room = await server.create_conversation(alice, members=[bob])
    watcher = await joined(server, bob, room["id"])
    parent = await send(watcher, room["id"], "question")
    await watcher.expect("NewMessage", timeout=TIMEOUT)
    response = await api(server, alice, "POST", f"/conversations/{room['id']}/messages",
                         json={"content": "answer", "parent_id": parent["id"],
                               "attachments": [attachment()], "client_message_id": "bot-1"})
    assert response.status_code == 201, response.text
    message = response.json()
    assert message["sender_id"] == alice.id
    assert message["sender_name"] == "bot"
    assert message["content"] == "answer"
    assert message["parent_id"] == parent["id"]
    assert message["attachments"] == [attachment()]
    assert message["client_message_id"] == "bot-1"
    assert (await watcher.expect("NewMessage", timeout=TIMEOUT))["message"] == message


async def test_reposting_a_client_message_id_is_200_without_broadcast(
        server: RunningServer) -> None:
    """A retried POST returns the stored message with 200 and broadcasts nothing new."""
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, members=[bob])
    watcher = await joined(server, bob, room["id"])
    path = f"/conversations/{room['id']}/messages"
    first = await api(server, alice, "POST", path, json={"content": "x",
                                                          "client_message_id": "r-1"})
    second = await api(server, alice, "POST", path, json={"content": "x",
                                                           "client_message_id": "r-1"})
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json() == second.json()
    await watcher.expect("NewMessage", timeout=TIMEOUT)
    await watcher.expect_none("NewMessage", within=0.5)


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"content": "  "}, 400, "BAD_REQUEST"),
    ({"content": "x" * 4001}, 400, "BAD_REQUEST"),
    ({"content": 5}, 400, "BAD_REQUEST"),
    ({"content": "x", "attachments": [{"url": "ftp://a/b", "name": "b", "mime_type": "a/b",
                                       "size": 1}]}, 400, "BAD_REQUEST"),
    ({"content": "x", "parent_id": MISSING}, 400, "BAD_REQUEST"),
    ({"content": "x", "client_message_id": "c" * 65}, 400, "BAD_REQUEST"),
])
async def test_bad_message_bodies_store_nothing(server: RunningServer, body: dict[str, Any],
                                                status: int, code: str) -> None:
    """A POST that breaks a §2 rule is refused and stores nothing."""
    alice = server.user()
    room = await server.create_conversation(alice)
    response = await api(server, alice, "POST", f"/conversations/{room['id']}/messages",
                         json=body)
    assert_error_body(response, status, code)
    client = await server.connect(alice)
    assert await all_messages(client, room["id"]) == []


async def test_posting_needs_the_send_permission(server: RunningServer) -> None:
    """`read_only` members and outsiders of a group get 403; an unknown conversation 404."""
    alice, bob, mallory = server.user(), server.user(), server.user()
    room = await server.create_conversation(alice, kind="group", members=[bob])
    assert await set_role(server, alice, room["id"], bob, "read_only") == 200
    path = f"/conversations/{room['id']}/messages"
    assert_error_body(await api(server, bob, "POST", path, json={"content": "x"}), 403,
                      "FORBIDDEN")
    assert_error_body(await api(server, mallory, "POST", path, json={"content": "x"}), 403,
                      "FORBIDDEN")
    assert_error_body(await api(server, alice, "POST", f"/conversations/{MISSING}/messages",
                                json={"content": "x"}), 404, "NOT_FOUND")


async def test_an_oversized_message_body_gets_413(server: RunningServer) -> None:
    """A message body over `max_body_bytes` is a 413 and stores nothing."""
    alice = server.user()
    room = await server.create_conversation(alice)
    big = b'{"content": "' + b"x" * (server.settings.max_body_bytes + 1) + b'"}'
    response = await api(server, alice, "POST", f"/conversations/{room['id']}/messages",
                         content=big, headers={"Content-Type": "application/json"})
    assert_error_body(response, 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=ten", "before=-1",
                                   "before=1.5"])
async def test_bad_paging_parameters_get_400(server: RunningServer, query: str) -> None:
    """`limit` is 1–100 and `before` a non-negative integer."""
    alice = server.user()
    room = await server.create_conversation(alice)
    assert_error_body(await api(server, alice, "GET",
                                f"/conversations/{room['id']}/messages?{query}"),
                      400, "BAD_REQUEST")


async def test_messages_of_an_unknown_conversation_are_404(server: RunningServer) -> None:
    """`GET …/messages` of an unknown conversation is 404."""
    alice = server.user()
    assert_error_body(await api(server, alice, "GET", f"/conversations/{MISSING}/messages"),
                      404, "NOT_FOUND")


async def test_rest_history_shows_tombstones(server: RunningServer) -> None:
    """`GET …/messages` never shows a deleted message's content."""
    alice = server.user()
    room = await server.create_conversation(alice)
    client = await joined(server, alice, room["id"])
    message = await send(client, room["id"], "secret", attachments=[attachment()])
    await client.request("DeleteMessage", message_id=message["id"])
    response = await api(server, alice, "GET", f"/conversations/{room['id']}/messages")
    body = response.json()
    assert [m["id"] for m in body["messages"]] == [message["id"]]
    assert_tombstone(body["messages"][0])
    assert "secret" not in response.text


async def test_a_body_sent_in_pieces_is_read_whole(server: RunningServer) -> None:
    """A body that arrives in several chunks (chunked encoding, a slow client) is read to
    its end, not cut at the first piece."""
    alice = server.user()
    room = await server.create_conversation(alice)
    body = json.dumps({"content": "hello in two pieces", "client_message_id": "p-1"}).encode()

    async def pieces() -> AsyncIterator[bytes]:
        yield body[:10]
        await asyncio.sleep(0.2)
        yield body[10:]

    response = await api(server, alice, "POST", f"/conversations/{room['id']}/messages",
                         content=pieces(), headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    assert response.json()["content"] == "hello in two pieces"


async def test_an_oversized_chunked_body_gets_413(server: RunningServer) -> None:
    """The size bound holds without a Content-Length too."""
    alice = server.user()

    async def pieces() -> AsyncIterator[bytes]:
        yield b'{"kind": "group", "name": "'
        for _ in range(5):
            yield b"x" * (server.settings.max_body_bytes // 4)
        yield b'"}'

    response = await api(server, alice, "POST", "/conversations", content=pieces(),
                         headers={"Content-Type": "application/json"})
    assert_error_body(response, 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize(("path", "body"), [
    ("/conversations", {"kind": "group", "name": "a\u0000b"}),
    ("/conversations/{room}/messages", {"content": "a\u0000b"}),
    ("/conversations/{room}/messages", {"content": "x", "client_message_id": "\u0000"}),
])
async def test_strings_holding_nul_get_400(server: RunningServer, path: str,
                                           body: dict[str, Any]) -> None:
    """U+0000 is refused as a bad request on every backend (PostgreSQL cannot store it)."""
    alice = server.user()
    room = await server.create_conversation(alice)
    response = await api(server, alice, "POST", path.replace("{room}", room["id"]), json=body)
    assert_error_body(response, 400, "BAD_REQUEST")
    assert "U+0000" in response.json()["error"]["message"]


async def test_a_nul_in_the_token_name_is_dropped(server: RunningServer) -> None:
    """A display name with U+0000 is cleaned, not a server error."""
    alice = server.user("ali\u0000ce")
    response = await api(server, alice, "GET", "/users/me")
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "alice"
