"""Webhooks about people and for operators (docs/WEBHOOKS.md), over real sockets on both
backends against the verifying receiver: `user.erased` from the server API's erasure,
`message.undelivered` leaving out the connected, the reconnected and those who muted and
naming the mentioned, and the dead letters listed and replayed through the server API."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import StartServer
from tests.e2e.test_webhooks import created_in_order, quick, send_some
from tests.support.flows import TIMEOUT, joined, send, set_role
from tests.support.server import RunningServer
from tests.support.server_api import API_KEY, ServerApi, assert_api_error, made_user, new_id
from tests.support.waiting import until
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.asyncio(loop_scope="session")

DEAD = "/webhooks/dead-letters"


def keyed(receiver: WebhookReceiver, **overrides: Any) -> dict[str, Any]:
    return quick(receiver, api_keys=(API_KEY,), **overrides)


async def test_an_erasure_emits_user_erased(start_server: StartServer,
                                            receiver: WebhookReceiver) -> None:
    """DELETE /users/{id} stores `user.erased` {user_id} with the erasure; an unknown user
    is a 404 and emits nothing."""
    async with start_server(**keyed(receiver)) as server:
        api = ServerApi(server)
        user = await made_user(api, "gone")
        assert_api_error(await api.erase(unknown := new_id()), 404, "NOT_FOUND")
        assert (await api.erase(user.id)).status_code == 204
        await receiver.wait_until(lambda: any(
            e.type == "user.erased" and e.data == {"user_id": user.id}
            for e in receiver.unique("")), what="user.erased")
        erased = [e.data for e in receiver.unique("") if e.type == "user.erased"]
        assert {"user_id": unknown} not in erased
        assert receiver.unverified == 0


async def test_undelivered_leaves_out_the_muted_and_names_the_mentioned(
        start_server: StartServer, receiver: WebhookReceiver) -> None:
    """Of the members: the sender and the connected are not named; one who reconnected
    within the grace is not either; one who muted is left out even when mentioned; the
    offline mentioned one is in `user_ids` and in `mentioned`, the other offline one only
    in `user_ids`."""
    async with start_server(**quick(receiver, offline_grace=1.5)) as server:
        names = ("alice", "bob", "carol", "dave", "erin", "frank")
        alice, bob, carol, dave, erin, frank = (server.user(n) for n in names)
        room = (await server.create_conversation(alice))["id"]
        a = await joined(server, alice, room)
        await joined(server, bob, room)  # online
        offline = [await joined(server, u, room) for u in (carol, dave, erin, frank)]
        muted = await offline[1].request("UpdateMembership", conversation_id=room,
                                         muted=True, timeout=TIMEOUT)
        assert muted["type"] == "ActionConfirmed", muted
        for client in offline:
            await client.close()
        await asyncio.sleep(0.2)  # the server notices a close at once; a margin
        message = await send(a, room, "where is everyone?",
                             mentions=[bob.id, dave.id, erin.id])
        await joined(server, frank, room)  # back within the grace
        await receiver.wait_until(lambda: any(
            e.type == "message.undelivered" for e in receiver.unique(room)),
            what="message.undelivered")
        undelivered = [e.data for e in receiver.unique(room)
                       if e.type == "message.undelivered"]
        assert undelivered == [{"conversation_id": room, "version": message["version"],
                                "message_id": message["id"], "sender_id": alice.id,
                                "user_ids": sorted([carol.id, erin.id]),
                                "mentioned": [erin.id]}]


async def test_at_all_mentions_every_offline_member(start_server: StartServer,
                                                    receiver: WebhookReceiver) -> None:
    async with start_server(**quick(receiver, offline_grace=0.5)) as server:
        alice, bob = server.user("alice"), server.user("bob")
        room = (await server.create_conversation(alice))["id"]
        a = await joined(server, alice, room)
        assert await set_role(server, alice, room, bob, "member") in (200, 201)
        b = await joined(server, bob, room)
        await b.close()
        await asyncio.sleep(0.2)
        await send(a, room, "all hands", mentions=["@all"])
        await receiver.wait_until(lambda: any(
            e.type == "message.undelivered" for e in receiver.unique(room)))
        [data] = [e.data for e in receiver.unique(room) if e.type == "message.undelivered"]
        assert (data["user_ids"], data["mentioned"]) == ([bob.id], [bob.id])


async def _has_dead(api: ServerApi[RunningServer], room: str, count: int) -> bool:
    return len(await dead_of(api, room, 100)) >= count


async def dead_of(api: ServerApi[RunningServer], room: str, limit: int) -> list[Any]:
    """Every dead letter of `room`, page by page (other tests' may be in the database)."""
    found: list[Any] = []
    cursor: str | None = None
    for _ in range(1000):
        query = f"?limit={limit}" + ("" if cursor is None else f"&cursor={cursor}")
        response = await api.call("GET", DEAD + query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["dead_letters"]) <= limit
        found += [d for d in page["dead_letters"] if d["conversation_id"] == room]
        cursor = page["next"]
        if cursor is None:
            return found
    raise AssertionError("the listing never ended")


async def test_dead_letters_through_the_server_api(start_server: StartServer,
                                                   receiver: WebhookReceiver) -> None:
    """Dead events are listed in pages, oldest first, without content; replaying some by
    id, then all, sends them again in order; bad input is a 400 naming the field and
    replays nothing."""
    receiver.mode = "fail"
    async with start_server(**keyed(receiver, webhook_retry_for=0.3)) as server:
        api = ServerApi(server)
        alice = server.user("alice")
        room = (await server.create_conversation(alice))["id"]
        client = await server.connect(alice)
        ids = await send_some(client, [room], 2, "doomed")
        # The room's own three (others' may die too: the database is shared).
        await until(lambda: _has_dead(api, room, 3), "the room's three events are dead",
                    every=0.2)
        dead = await dead_of(api, room, 1)
        assert [d["type"] for d in dead] == ["conversation.created", "message.created",
                                             "message.created"]
        assert dead[0]["last_error"] == "HTTP 500"
        assert "doomed" not in str(dead)
        for query, field in (("?limit=0", "limit"), ("?limit=501", "limit"),
                             ("?limit=x", "limit"), ("?cursor=abc", "cursor")):
            assert_api_error(await api.call("GET", DEAD + query), 400, "BAD_REQUEST", field)
        for body, field in (({}, "ids"), ({"ids": []}, "ids"),
                            ({"ids": ["x"], "all": True}, "ids"),
                            ({"ids": ["x"] * 1001}, "ids"), ({"every": True}, "every")):
            assert_api_error(await api.call("POST", DEAD + "/replay", body), 400,
                             "BAD_REQUEST", field)
        assert len(await dead_of(api, room, 100)) == 3  # nothing replayed
        receiver.mode = "ok"
        first = await api.call("POST", DEAD + "/replay", {"ids": [dead[0]["id"]]})
        assert first.json() == {"replayed": 1}, first.text
        await receiver.wait_for_count(room, 1)
        rest = await api.call("POST", DEAD + "/replay", {"all": True})
        assert rest.status_code == 200, rest.text
        assert rest.json()["replayed"] >= 2  # others' too, on a shared database
        await receiver.wait_for_count(room, 3)
        assert created_in_order(receiver, room) == ids
        assert await dead_of(api, room, 100) == []
        unkeyed = ServerApi(server, key=None)
        assert_api_error(await unkeyed.call("GET", DEAD), 401, "UNAUTHORIZED")
