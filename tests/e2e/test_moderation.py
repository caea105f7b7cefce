"""The pre-send moderation hook (docs/WEBHOOKS.md, "Moderation") against a real HTTP
moderator in the test process: allow, reject (`REJECTED`, nothing stored), replace, the
timeout policy both ways, edits reviewed the same way, and a slow review that holds up no
one else's send."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from tests.conftest import StartServer
from tests.support.flows import TIMEOUT, assert_error, joined, rest_messages, send
from tests.support.webhook_receiver import Endpoint, new_secret

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRET = new_secret()


class Moderator:
    """Rejects "spam…", replaces "swear…" with "[removed]", sleeps on "slow…"."""

    def __init__(self) -> None:
        self.reviews: list[dict[str, Any]] = []
        self.endpoint = Endpoint("/review", self._review)
        self.url = self.endpoint.url

    async def _review(self, request: web.Request) -> web.Response:
        payload = Webhook(SECRET).verify(await request.read(), dict(request.headers))
        assert payload["type"] == "message.review"
        data = payload["data"]
        self.reviews.append(data)
        content: str = data["content"]
        if content.startswith("slow"):
            await asyncio.sleep(float(content.split()[1]))
        if content.startswith("spam"):
            return web.json_response({"action": "reject", "reason": "no spam here"})
        if content.startswith("swear"):
            return web.json_response({"action": "replace", "content": "[removed]"})
        return web.json_response({"action": "allow"})


@pytest_asyncio.fixture(loop_scope="session")
async def moderator() -> AsyncIterator[Moderator]:
    moderator = Moderator()
    await moderator.endpoint.up()
    try:
        yield moderator
    finally:
        await moderator.endpoint.down()


def moderated(moderator: Moderator, **overrides: Any) -> dict[str, Any]:
    return {"moderation_url": moderator.url, "webhook_secret": SECRET,
            "moderation_timeout": 0.5, "rate_limits": False, **overrides}


async def test_allow_reject_and_replace(start_server: StartServer,
                                        moderator: Moderator) -> None:
    """Allowed messages are stored as sent, rejected ones get `REJECTED` with the
    moderator's reason and are not stored, replaced ones are stored with the new content."""
    async with start_server(**moderated(moderator)) as server:
        alice = server.user("alice")
        room = (await server.create_conversation(alice))["id"]
        a = await joined(server, alice, room)
        assert (await send(a, room, "hello"))["content"] == "hello"
        reply = await a.request("SendMessage", conversation_id=room, content="spam offer",
                                timeout=TIMEOUT)
        assert_error(reply, "REJECTED", request_id=reply["request_id"])
        assert reply["message"] == "no spam here"
        assert (await send(a, room, "swear words"))["content"] == "[removed]"
        stored = [m["content"] for m in await rest_messages(server, alice, room)]
        assert stored == ["hello", "[removed]"]
        assert moderator.reviews[0] == {"conversation_id": room, "sender_id": alice.id,
                                        "content": "hello", "attachments": [],
                                        "parent_id": None, "action": "send",
                                        "message_id": None}


async def test_edits_are_reviewed(start_server: StartServer, moderator: Moderator) -> None:
    """An edit is reviewed as `action: "edit"` with the message's id: allowed it is stored,
    rejected it is `REJECTED` and the content stays, replaced it stores the replacement."""
    async with start_server(**moderated(moderator)) as server:
        alice, bob = server.user("alice"), server.user("bob")
        room = (await server.create_conversation(alice))["id"]
        a, b = await joined(server, alice, room), await joined(server, bob, room)
        message = await send(a, room, "hello")
        moderator.reviews.clear()

        async def edit(content: str) -> dict[str, Any]:
            reply: dict[str, Any] = await a.request(
                "EditMessage", message_id=message["id"], content=content, timeout=TIMEOUT)
            return reply

        assert (await edit("hello there"))["type"] == "ActionConfirmed"
        assert moderator.reviews == [{"conversation_id": room, "sender_id": alice.id,
                                      "content": "hello there", "attachments": [],
                                      "parent_id": None, "action": "edit",
                                      "message_id": message["id"]}]
        rejected = await edit("spam now")
        assert_error(rejected, "REJECTED", request_id=rejected["request_id"])
        assert rejected["message"] == "no spam here"
        assert [m["content"] for m in await rest_messages(server, alice, room)] == [
            "hello there"]
        replaced = await edit("swear again")
        assert replaced["type"] == "ActionConfirmed", replaced
        edits = [(await b.expect("MessageEdited", TIMEOUT))["message"]["content"]
                 for _ in range(2)]
        assert edits == ["hello there", "[removed]"]  # nothing of the rejected one
        assert [m["content"] for m in await rest_messages(server, alice, room)] == [
            "[removed]"]


@pytest.mark.parametrize(("failure", "stored"), [("open", True), ("closed", False)])
async def test_a_moderator_that_times_out_fails_as_configured(
        start_server: StartServer, moderator: Moderator, failure: str, stored: bool) -> None:
    async with start_server(**moderated(moderator, moderation_failure=failure)) as server:
        alice = server.user("alice")
        room = (await server.create_conversation(alice))["id"]
        a = await joined(server, alice, room)
        reply = await a.request("SendMessage", conversation_id=room, content="slow 2",
                                timeout=TIMEOUT)
        if stored:
            assert reply["type"] == "ActionConfirmed", reply
        else:
            assert_error(reply, "REJECTED", request_id=reply["request_id"])
        assert len(await rest_messages(server, alice, room)) == int(stored)


async def test_a_slow_review_holds_up_no_other_send(start_server: StartServer,
                                                    moderator: Moderator) -> None:
    """The review runs before the write is queued: while one send waits on a slow
    moderator, another sender's messages are stored and confirmed."""
    async with start_server(**moderated(moderator, moderation_timeout=5.0)) as server:
        alice, bob = server.user("alice"), server.user("bob")
        room = (await server.create_conversation(alice))["id"]
        a, b = await joined(server, alice, room), await joined(server, bob, room)
        slow = asyncio.ensure_future(a.request("SendMessage", conversation_id=room,
                                               content="slow 1.5", timeout=TIMEOUT))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        for i in range(5):
            await send(b, room, f"quick {i}")
        assert time.monotonic() - started < 1.0
        assert not slow.done()
        assert (await slow)["type"] == "ActionConfirmed"
