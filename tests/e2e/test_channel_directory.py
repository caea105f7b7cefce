"""`GET /api/v1/channels` (PROTOCOL.md §7, added): the directory of public channels, on
both backends — searched by name, paged by cursor, never a group, bad parameters refused."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support.flows import TIME, joined, set_role
from tests.support.server import RunningServer, User

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def directory(server: RunningServer, user: User, **params: Any) -> Any:
    async with server.http(user) as http:
        return await http.get("/api/v1/channels", params=params)


async def listed(server: RunningServer, user: User, **params: Any) -> dict[str, Any]:
    response = await directory(server, user, **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_search_pages_and_membership(server: RunningServer) -> None:
    """Five channels of one tag come back by name over pages of two, each once, with
    member counts and `is_member`; the private group of the same tag never appears."""
    tag = uuid.uuid4().hex[:10]
    alice, bob = server.user(), server.user()
    names = [f"{tag}-{n}" for n in ("echo", "alpha", "delta", "bravo", "charlie")]
    rooms = {n: await server.create_conversation(alice, name=n) for n in names}
    await server.create_conversation(alice, "group", name=f"{tag}-secret", members=[bob])
    await joined(server, bob, rooms[f"{tag}-delta"]["id"])
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"query": tag.upper(), "limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        page = await listed(server, bob, **params)
        pages += 1
        assert len(page["channels"]) <= 2
        seen += page["channels"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert [c["name"] for c in seen] == sorted(names)
    by_name = {c["name"]: c for c in seen}
    assert by_name[f"{tag}-delta"]["is_member"] is True
    assert by_name[f"{tag}-delta"]["member_count"] == 2
    assert by_name[f"{tag}-alpha"] == {
        "id": rooms[f"{tag}-alpha"]["id"], "name": f"{tag}-alpha",
        "created_at": rooms[f"{tag}-alpha"]["created_at"], "member_count": 1,
        "is_member": False}
    assert TIME.match(by_name[f"{tag}-alpha"]["created_at"])
    assert (await listed(server, bob, query=f"{tag}-secret"))["channels"] == []


async def test_banned_caller_does_not_see_the_channel(server: RunningServer) -> None:
    tag = uuid.uuid4().hex[:10]
    alice, bob = server.user(), server.user()
    room = await server.create_conversation(alice, name=f"{tag}-room")
    assert await set_role(server, alice, room["id"], bob, "banned") in (200, 201)
    assert (await listed(server, bob, query=tag))["channels"] == []
    [entry] = (await listed(server, alice, query=tag))["channels"]
    assert (entry["id"], entry["member_count"]) == (room["id"], 1)


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"limit": "ten"}, "limit"),
    ({"query": "x" * 101}, "query"), ({"cursor": "not-a-cursor!"}, "cursor"),
    ({"cursor": "WyJvbmx5Il0="}, "cursor"),  # base64 of ["only"]: not a (name, id) pair
])
async def test_bad_parameters_are_400_naming_them(server: RunningServer,
                                                  params: dict[str, Any], field: str) -> None:
    response = await directory(server, server.user(), **params)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "BAD_REQUEST"
    assert field in error["message"]


async def test_limits_at_the_bounds_and_no_token(server: RunningServer) -> None:
    tag = uuid.uuid4().hex[:10]
    alice = server.user()
    for n in range(3):
        await server.create_conversation(alice, name=f"{tag}-{n}")
    one = await listed(server, alice, query=tag, limit=1)
    assert len(one["channels"]) == 1
    assert one["next_cursor"] is not None
    full = await listed(server, alice, query=tag, limit=100)
    assert len(full["channels"]) == 3
    assert full["next_cursor"] is None
    assert (await listed(server, alice, query="q" * 100))["channels"] == []
    async with server.http() as http:
        assert (await http.get("/api/v1/channels")).status_code == 401
