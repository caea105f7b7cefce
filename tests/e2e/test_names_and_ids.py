"""Names are labels and ids are whole UUIDs (docs/DECISIONS.md "Names and ids"): what a
token's `name` or a conversation's `name` becomes, and that `"<uuid>\\n"` is no id, over the
WebSocket and the HTTP API."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.support.flows import TIMEOUT, assert_error, joined, send
from tests.support.server import RunningServer, User

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def api(server: RunningServer, user: User, method: str, path: str,
              **kwargs: Any) -> httpx.Response:
    async with server.http(user) as http:
        return await http.request(method, "/api/v1" + path, **kwargs)


async def names_seen(server: RunningServer, user: User) -> set[str]:
    """The user's name wherever the server shows it: `Connected`, `/users/me`, the member
    list, a message's `sender_name`."""
    client = await server.connect(user)
    me = await api(server, user, "GET", "/users/me")
    assert me.status_code == 200, me.text
    room = await server.create_conversation(user, name="names")
    members = await api(server, user, "GET", f"/conversations/{room['id']}/members")
    assert members.status_code == 200, members.text
    member = await joined(server, user, room["id"])
    message = await send(member, room["id"])
    return {client.connected["user_name"], me.json()["name"],
            members.json()["members"][0]["user_name"], message["sender_name"]}


async def test_a_lone_surrogate_in_the_name_is_dropped(server: RunningServer) -> None:
    """A token's `name` may spell a lone surrogate (`"\\ud800"` in its JSON): it is dropped,
    and neither the WebSocket nor any REST request fails over it."""
    alice = server.user("al\ud800ice\udfff")
    assert await names_seen(server, alice) == {"alice"}


@pytest.mark.parametrize(("claim", "shown"), [
    ("Mallory\u202e\n\tgpj.exe\x07", "Mallory gpj.exe"),  # override, newline, tab, bell
    ("\u2066eve\u2069\u200b\u200e \r\n  admin\x00", "eve admin"),  # isolates, ZWSP, NUL
    ("  Zoe\u0301  ", "Zoé"),  # NFC: e + combining acute is é
    ("\U0001F469\u200d\U0001F4BB dev\ufe0f", "\U0001F469\u200d\U0001F4BB dev\ufe0f"),
])
async def test_token_names_are_stored_normalised(server: RunningServer, claim: str,
                                                 shown: str) -> None:
    """Controls and bidi or invisible format characters are dropped, whitespace collapses
    to single spaces, NFC; the emoji joiner and variation selectors stay."""
    assert await names_seen(server, server.user(claim)) == {shown}


async def test_a_name_of_nothing_but_controls_is_no_name(server: RunningServer) -> None:
    """What normalises to nothing leaves the user its default name."""
    user = server.user("\u202e\u200b\n\x1b")
    assert await names_seen(server, user) == {f"user-{user.id[:8]}"}


async def test_a_long_name_is_cut_without_splitting_a_character(
        server: RunningServer) -> None:
    """The bound is 100 code points: an emoji outside the BMP counts once and is kept
    whole."""
    user = server.user("a" * 99 + "\U0001F600" * 5)
    assert await names_seen(server, user) == {"a" * 99 + "\U0001F600"}


async def test_conversation_names_are_stored_normalised(server: RunningServer) -> None:
    """A group's name loses its controls and overrides; one with nothing left is refused,
    naming the field, and nothing is created."""
    alice = server.user("alice")
    room = await server.create_conversation(alice, kind="group",
                                            name="Team\u202e\nRoom\x07\u2067")
    assert room["name"] == "Team Room"
    fetched = await api(server, alice, "GET", f"/conversations/{room['id']}")
    assert fetched.json()["name"] == "Team Room"
    before = await api(server, alice, "GET", "/conversations")
    empty = await api(server, alice, "POST", "/conversations",
                      json={"kind": "group", "name": "\u202e\u2066 \n\x07"})
    assert empty.status_code == 400, empty.text
    assert empty.json()["error"]["code"] == "BAD_REQUEST"
    assert "`$.name`" in empty.json()["error"]["message"]
    after = await api(server, alice, "GET", "/conversations")
    assert len(after.json()["conversations"]) == len(before.json()["conversations"])


# -- ids -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("type_", "fields", "field"), [
    ("JoinConversation", {}, "$.conversation_id"),
    ("SendMessage", {"content": "x"}, "$.conversation_id"),
    ("CallOffer", {"call_id": str(uuid.uuid4()), "sdp": "v=0", "call_type": "audio"},
     "$.conversation_id"),
])
async def test_an_id_with_a_trailing_newline_is_a_bad_request_on_the_websocket(
        server: RunningServer, type_: str, fields: dict[str, Any], field: str) -> None:
    """`"<uuid>\\n"` is not an id: BAD_REQUEST naming the field, and the connection stays."""
    alice = server.user("alice")
    room = await server.create_conversation(alice, name="ids")
    client = await server.connect(alice)
    reply = await client.request(type_, conversation_id=room["id"] + "\n", timeout=TIMEOUT,
                                 **fields)
    assert_error(reply, "BAD_REQUEST", field=field, request_id=reply["request_id"])
    assert (await client.request("Ping", timeout=TIMEOUT))["type"] == "Pong"


async def test_an_id_with_a_trailing_newline_is_a_bad_request_over_rest(
        server: RunningServer) -> None:
    """In a path or a body, `"<uuid>\\n"` is BAD_REQUEST (400), not a lookup of that id."""
    alice, bob = server.user("alice"), server.user("bob")
    await server.ensure_user(bob)
    room = (await server.create_conversation(alice, kind="group", name="ids"))["id"]
    newline = "%0A"
    for method, path, body in (
            ("GET", f"/conversations/{room}{newline}", None),
            ("GET", f"/conversations/{room}{newline}/messages", None),
            ("GET", f"/conversations/{room}{newline}/calls", None),
            ("PUT", f"/conversations/{room}/members/{bob.id}{newline}", {"role": "member"}),
            ("POST", "/conversations", {"kind": "group", "name": "g",
                                        "member_ids": [bob.id + "\n"]}),
            ("POST", f"/conversations/{room}/messages", {"content": "x",
                                                         "parent_id": room + "\n"}),
    ):
        response = await api(server, alice, method, path, json=body)
        assert response.status_code == 400, (method, path, response.text)
        assert response.json()["error"]["code"] == "BAD_REQUEST"
    members = await api(server, alice, "GET", f"/conversations/{room}/members")
    assert [m["user_id"] for m in members.json()["members"]] == [alice.id]


async def test_a_token_whose_sub_ends_in_a_newline_gets_401(server: RunningServer) -> None:
    """`sub` is matched whole too: a user id with a newline is never registered."""
    user_id = str(uuid.uuid4())
    token = server.token(user_id + "\n", "nl")
    async with server.http() as http:
        response = await http.get("/api/v1/users/me",
                                  headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    assert await server.internals.store.get_user(user_id + "\n") is None
