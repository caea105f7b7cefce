"""The server API (PROTOCOL.md §8) over real HTTP and WebSockets, on both backends: keys,
users, conversations, members and messages — every endpoint, its errors (each refused
request changing nothing), idempotent retries, the rules of system messages, and what
WebSocket clients see live. Presence, disconnects and erasure: test_server_api_erase.py."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.support.flows import TIMEOUT, all_messages, assert_error, joined, send
from tests.support.server import RunningServer
from tests.support.server_api import (
    API_KEY,
    OLD_API_KEY,
    ServerApi,
    assert_api_error,
    made_user,
    new_id,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

Api = ServerApi[RunningServer]


# -- keys ------------------------------------------------------------------------------------


async def test_without_keys_the_whole_api_is_404(server: RunningServer) -> None:
    """An instance without HUBBUB_API_KEYS shows nothing of the server API, key or not."""
    api = ServerApi(server)
    user_id = new_id()
    for response in (await api.put_user(user_id, name="x"), await api.get_user(user_id),
                     await api.create(kind="group", name="g"),
                     await api.disconnect(user_id), await api.erase(user_id)):
        assert_api_error(response, 404, "NOT_FOUND")
    for method, path in (("POST", f"/users/{user_id}"), ("GET", "/nothing-here")):
        assert_api_error(await api.call(method, path), 404, "NOT_FOUND")
    assert await server.internals.users.get(user_id) is None


async def test_with_keys_another_path_or_method_is_404_and_needs_the_key(api: Api) -> None:
    for method, path in (("POST", f"/users/{new_id()}"), ("GET", "/nothing-here")):
        assert_api_error(await api.call(method, path), 404, "NOT_FOUND")
        assert_api_error(await ServerApi(api.instance, None).call(method, path), 401,
                         "UNAUTHORIZED")


async def test_a_missing_or_wrong_key_is_401_and_changes_nothing(api: Api) -> None:
    user_id = new_id()
    for key in (None, "wrong" * 10, API_KEY[:-1]):
        other = ServerApi(api.instance, key)
        assert_api_error(await other.put_user(user_id, name="x"), 401, "UNAUTHORIZED")
    assert_api_error(await api.get_user(user_id), 404, "NOT_FOUND")
    response = await api.call("GET", f"/users/{user_id}",
                              headers={"Authorization": f"Basic {API_KEY}"})
    assert_api_error(response, 401, "UNAUTHORIZED")


async def test_both_configured_keys_are_accepted(api: Api) -> None:
    user_id = new_id()
    assert (await ServerApi(api.instance, OLD_API_KEY).put_user(user_id)).status_code == 201
    assert (await api.get_user(user_id)).status_code == 200


# -- users -----------------------------------------------------------------------------------


async def test_put_creates_then_updates_a_user_and_get_reads_it(api: Api) -> None:
    user_id = new_id()
    created = await api.put_user(user_id, name="  Ann  ", avatar_url="https://a.example/1.png",
                                 metadata={"plan": "pro", "tags": [1, {"x": None}]})
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "Ann"
    updated = await api.put_user(user_id, metadata={"plan": "free"})
    assert updated.status_code == 200
    fetched = (await api.get_user(user_id)).json()
    assert fetched["id"] == user_id
    assert fetched["name"] == "Ann"  # name omitted: kept
    assert fetched["avatar_url"] is None  # avatar omitted: cleared (PUT replaces)
    assert fetched["metadata"] == {"plan": "free"}
    assert fetched["last_seen"] is None


async def test_get_of_an_unknown_user_is_404(api: Api) -> None:
    assert_api_error(await api.get_user(new_id()), 404, "NOT_FOUND", "user_id")


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "   "}, "$.name"),
    ({"name": "n" * 101}, "$.name"),
    ({"name": 5}, "$.name"),
    ({"avatar_url": "ftp://a.example/x"}, "$.avatar_url"),
    ({"avatar_url": "https://a.example/" + "x" * 2048}, "$.avatar_url"),
    ({"metadata": [1, 2]}, "$.metadata"),
    ({"metadata": {"big": "x" * 8200}}, "$.metadata"),
    ({"metadata": nested(9)}, "$.metadata"),
])
async def test_a_bad_user_body_is_400_naming_the_field(api: Api, body: dict[str, Any],
                                                       field: str) -> None:
    user_id = new_id()
    assert (await api.put_user(user_id, name="kept", metadata={"k": 1})).status_code == 201
    assert_api_error(await api.put_user(user_id, **body), 400, "BAD_REQUEST", field)
    stored = (await api.get_user(user_id)).json()
    assert (stored["name"], stored["metadata"]) == ("kept", {"k": 1})


async def test_metadata_too_deep_for_the_decoder_is_400_too(api: Api) -> None:
    """Nesting past what the JSON decoder recurses into is a bad body, not a 500."""
    depth = 20_000
    raw = b'{"metadata":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"
    async with httpx.AsyncClient(base_url=api.instance.base_url, timeout=15) as http:
        response = await http.put(f"/api/v1/server/users/{new_id()}", content=raw,
                                  headers={"Authorization": f"Bearer {API_KEY}"})
    assert_api_error(response, 400, "BAD_REQUEST", "$.metadata")


async def test_metadata_at_the_depth_limit_is_accepted(api: Api) -> None:
    response = await api.put_user(new_id(), metadata=nested(8))
    assert response.status_code == 201, response.text


async def test_a_bad_user_id_in_the_path_is_400(api: Api) -> None:
    """A user id is the backend's (1-128 printable ASCII, no space): longer is refused."""
    assert_api_error(await api.put_user("x" * 129, name="x"), 400, "BAD_REQUEST", "user_id")


async def test_the_backends_own_ids_are_user_ids(api: Api) -> None:
    """Ids as real backends have them (an integer key, an Auth0 subject) are users."""
    for user_id in ("42", "auth0|5f7c8ec7c33c6c004bbafe82"):
        response = await api.put_user(user_id, name="ann")
        assert response.status_code in (200, 201), response.text
        assert (await api.get_user(user_id)).json()["id"] == user_id


async def test_a_user_the_backend_made_can_connect(api: Api) -> None:
    user = await made_user(api)
    client = await api.instance.connect(user)
    assert client.user_id == user.id


# -- conversations and members ----------------------------------------------------------------


async def test_create_with_an_owner_creates_unknown_members(api: Api) -> None:
    owner = await made_user(api, "owner")
    strangers = [new_id(), new_id()]
    conversation = await api.group(owner.id, strangers)
    assert conversation["created_by"] == owner.id
    assert conversation["member_count"] == 3
    for user_id in strangers:
        assert (await api.get_user(user_id)).status_code == 200
    async with api.instance.http(owner) as http:
        listed = (await http.get(f"/api/v1/conversations/{conversation['id']}/members")).json()
    roles = {m["user_id"]: m["role"] for m in listed["members"]}
    assert roles == {owner.id: "owner", strangers[0]: "member", strangers[1]: "member"}


@pytest.mark.parametrize("kind", ["group", "channel"])
async def test_create_without_an_owner(api: Api, kind: str) -> None:
    members = [new_id(), new_id()]
    response = await api.create(kind=kind, name="room", member_ids=members)
    assert response.status_code == 201, response.text
    conversation = response.json()
    assert (conversation["kind"], conversation["member_count"]) == (kind, 2)
    assert conversation["created_by"] == ""
    presence = (await api.presence(conversation["id"])).json()
    assert sorted(m["user_id"] for m in presence["members"]) == sorted(members)


async def test_a_direct_conversation_takes_two_members_and_is_found_again(
        api: Api) -> None:
    pair = [new_id(), new_id()]
    first = await api.create(kind="direct", member_ids=pair)
    assert first.status_code == 201, first.text
    again = await api.create(kind="direct", member_ids=list(reversed(pair)))
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert_api_error(await api.create(kind="direct", member_ids=pair[:1]), 400,
                     "BAD_REQUEST", "$.member_ids")


async def test_the_same_idempotency_key_and_body_give_the_same_conversation(
        api: Api) -> None:
    key, members = new_id(), [new_id()]
    first = await api.create(key, kind="group", name="g", member_ids=members)
    second = await api.create(key, kind="group", name="g", member_ids=members)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    stranger = new_id()
    other = await api.create(key, kind="group", name="another", member_ids=[stranger])
    assert_api_error(other, 409, "CONFLICT", "Idempotency-Key")
    assert_api_error(await api.get_user(stranger), 404, "NOT_FOUND")  # nobody was created
    unkeyed = await api.create(kind="group", name="g", member_ids=members)
    assert unkeyed.json()["id"] != first.json()["id"]


async def test_concurrent_requests_with_one_key_create_one_conversation(
        api: Api) -> None:
    key = new_id()
    responses = await asyncio.gather(*(api.create(key, kind="group", name="g")
                                       for _ in range(4)))
    made = {r.json()["id"] for r in responses if r.status_code in (200, 201)}
    assert len(made) == 1
    assert [r.status_code for r in responses].count(201) == 1
    assert all(r.status_code in (200, 201, 409) for r in responses)


@pytest.mark.parametrize(("body", "headers", "field"), [
    ({"kind": "room", "name": "g"}, None, "$.kind"),
    ({"kind": "group"}, None, "$.name"),
    ({"kind": "group", "name": "g", "member_ids": ["has space"]}, None, "$.member_ids"),
    ({"kind": "group", "name": "g", "owner_id": 7}, None, "$.owner_id"),
    ({"kind": "group", "name": "g"}, {"Idempotency-Key": "x" * 256}, "Idempotency-Key"),
])
async def test_a_bad_conversation_body_is_400_naming_the_field(
        api: Api, body: dict[str, Any], headers: dict[str, str] | None,
        field: str) -> None:
    owner = new_id()
    body = {**body, "owner_id": body.get("owner_id", owner)}
    response = await api.call("POST", "/conversations", body, headers)
    assert_api_error(response, 400, "BAD_REQUEST", field)
    assert_api_error(await api.get_user(owner), 404, "NOT_FOUND")  # nobody was created


async def test_put_and_delete_a_member_are_seen_live(api: Api) -> None:
    owner = await made_user(api, "owner")
    conversation = await api.group(owner.id, [])
    watcher = await joined(api.instance, owner, conversation["id"])
    newcomer = new_id()
    added = await api.put_member(conversation["id"], newcomer, role="moderator")
    assert added.status_code == 201, added.text
    assert added.json()["role"] == "moderator"
    await watcher.expect("UserJoined", timeout=TIMEOUT, user_id=newcomer)
    changed = await api.put_member(conversation["id"], newcomer, role="read_only")
    assert (changed.status_code, changed.json()["role"]) == (200, "read_only")
    assert (await api.remove_member(conversation["id"], newcomer)).status_code == 204
    assert_api_error(await api.remove_member(conversation["id"], newcomer), 404, "NOT_FOUND")
    presence = (await api.presence(conversation["id"])).json()
    assert [m["user_id"] for m in presence["members"]] == [owner.id]


async def test_member_calls_refuse_bad_input_and_unknown_ids(api: Api) -> None:
    conversation = await api.group(None, [new_id()])
    user_id = new_id()
    assert_api_error(await api.put_member(conversation["id"], user_id, role="king"), 400,
                     "BAD_REQUEST", "$.role")
    assert_api_error(await api.put_member(new_id(), user_id, role="member"), 404,
                     "NOT_FOUND", "conversation_id")
    assert_api_error(await api.remove_member(new_id(), user_id), 404, "NOT_FOUND")
    assert_api_error(await api.get_user(user_id), 404, "NOT_FOUND")  # not created
    direct = (await api.create(kind="direct", member_ids=[new_id(), new_id()])).json()
    assert_api_error(await api.put_member(direct["id"], user_id, role="member"), 400,
                     "BAD_REQUEST")
    owner, member = new_id(), new_id()
    owned = await api.group(owner, [member])
    assert_api_error(await api.remove_member(owned["id"], owner), 409, "CONFLICT")
    assert_api_error(await api.put_member(owned["id"], owner, role="member"), 409, "CONFLICT")
    presence = (await api.presence(owned["id"])).json()
    assert sorted(m["user_id"] for m in presence["members"]) == sorted([owner, member])
    assert (await api.presence(conversation["id"])).json()["members"][0]["user_id"] != user_id


# -- messages --------------------------------------------------------------------------------


async def test_post_as_a_member_is_broadcast_and_idempotent(api: Api) -> None:
    owner = await made_user(api, "owner")
    bot = await made_user(api, "bot")
    conversation = await api.group(owner.id, [bot.id])
    watcher = await joined(api.instance, owner, conversation["id"])
    first = await api.post(conversation["id"], sender_id=bot.id, content="hi",
                           client_message_id="c-1")
    assert first.status_code == 201, first.text
    message = first.json()
    assert (message["sender_id"], message["sender_name"], message["kind"]) == (
        bot.id, "bot", "user")
    event = await watcher.expect("NewMessage", timeout=TIMEOUT)
    assert event["message"]["id"] == message["id"]
    retry = await api.post(conversation["id"], sender_id=bot.id, content="hi",
                           client_message_id="c-1")
    assert (retry.status_code, retry.json()["id"]) == (200, message["id"])
    await watcher.expect_none("NewMessage", within=0.5, version=message["version"] + 1)
    assert len(watcher.all("NewMessage")) == 1


async def test_post_refuses_outsiders_bad_bodies_and_unknown_ids(api: Api) -> None:
    owner = await made_user(api, "owner")
    outsider = await made_user(api, "outsider")
    conversation = await api.group(owner.id, [])
    cid = conversation["id"]
    assert_api_error(await api.post(cid, sender_id=outsider.id, content="x"), 403,
                     "FORBIDDEN")
    assert_api_error(await api.post(cid, sender_id=new_id(), content="x"), 404, "NOT_FOUND",
                     "$.sender_id")
    assert_api_error(await api.post(cid, content="   "), 400, "BAD_REQUEST", "$.content")
    assert_api_error(await api.post(cid, content="x" * 4001), 400, "BAD_REQUEST", "$.content")
    assert_api_error(await api.post(new_id(), content="x"), 404, "NOT_FOUND")
    client = await api.instance.connect(owner)
    assert await all_messages(client, cid) == []


async def test_a_system_message_is_shown_as_such_and_no_member_may_change_it(
        api: Api) -> None:
    owner = await made_user(api, "owner")
    member = await made_user(api, "member")
    conversation = await api.group(owner.id, [member.id])
    cid = conversation["id"]
    watcher = await joined(api.instance, member, cid)
    posted = await api.post(cid, content="Ann joined the team", client_message_id="s-1")
    assert posted.status_code == 201, posted.text
    message = posted.json()
    assert (message["kind"], message["sender_id"], message["sender_name"]) == (
        "system", "", "")
    event = await watcher.expect("NewMessage", timeout=TIMEOUT)
    assert event["message"]["kind"] == "system"
    retry = await api.post(cid, content="Ann joined the team", client_message_id="s-1")
    assert (retry.status_code, retry.json()["id"]) == (200, message["id"])
    owner_client = await joined(api.instance, owner, cid)
    for client in (owner_client, watcher):
        edit = await client.request("EditMessage", message_id=message["id"], content="no",
                                    request_id="e")
        assert_error(edit, "FORBIDDEN", request_id="e")
        deletion = await client.request("DeleteMessage", message_id=message["id"],
                                        request_id="d")
        assert_error(deletion, "FORBIDDEN", request_id="d")
    history = await all_messages(owner_client, cid)
    assert [(m["kind"], m["content"], m["deleted_at"]) for m in history] == [
        ("system", "Ann joined the team", None)]


async def test_a_users_own_message_stays_editable(
        api: Api) -> None:
    """A user's own message stays editable: the rule is about system messages only."""
    owner = await made_user(api, "owner")
    conversation = await api.group(owner.id, [])
    client = await joined(api.instance, owner, conversation["id"])
    mine = await send(client, conversation["id"], "mine")
    assert mine["kind"] == "user"
    edit = await client.request("EditMessage", message_id=mine["id"], content="edited")
    assert edit["type"] == "ActionConfirmed", edit
