"""hubbub.server_api against a real server: every endpoint of PROTOCOL.md §8 returns its
typed result, a refusal raises ServerApiError with the status and code, and the SDK's
clients see the backend's changes live."""

from __future__ import annotations

import pytest

from hubbub.client import Client
from hubbub.protocol.server import Connected, NewMessage, UserJoined
from hubbub.server_api import ServerApi, ServerApiError
from tests.conftest import Backend
from tests.sdk.support import FAST, next_of
from tests.support.server_api import API_KEY, api_instance

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_every_endpoint_returns_its_typed_result(backend: Backend) -> None:
    """Users, conversations, members, messages and presence, as a backend uses them."""
    async with api_instance(backend) as running, ServerApi(running.base_url, API_KEY) as api:
        ann, bob = running.user("ann"), running.user("bob")
        user = await api.put_user(ann.id, name="Ann", metadata={"plan": "pro"})
        assert (user.id, user.name, user.metadata) == (ann.id, "Ann", {"plan": "pro"})
        assert (await api.get_user(ann.id)).name == "Ann"
        room = await api.create_conversation("group", name="Support", owner_id=ann.id,
                                             idempotency_key=f"support-{ann.id}")
        again = await api.create_conversation("group", name="Support", owner_id=ann.id,
                                              idempotency_key=f"support-{ann.id}")
        assert again.id == room.id
        async with Client(running.ws_url, ann.token, backoff=FAST) as chat:
            events = chat.events()
            await chat.join(room.id)
            member = await api.put_member(room.id, bob.id, "moderator")
            assert (member.user_id, member.role) == (bob.id, "moderator")
            joined = await next_of(events, UserJoined)
            assert joined.user_id == bob.id
            notice = await api.post_message(room.id, "An agent is on the way.",
                                            client_message_id="notice-1")
            assert (notice.kind, notice.sender_id) == ("system", "")
            heard = await next_of(events, NewMessage)
            assert heard.message.id == notice.id
            presence = await api.presence(room.id)
            assert presence.online == [ann.id]
            await api.disconnect_user(ann.id)
            # Closed with 4003: the client reconnects by itself and goes on.
            await next_of(events, Connected)
            assert chat.connections == 2
        as_bob = await api.post_message(room.id, "hi", sender_id=bob.id)
        assert as_bob.sender_id == bob.id
        await api.remove_member(room.id, bob.id)
        await api.erase_user(bob.id)
        with pytest.raises(ServerApiError) as gone:
            await api.get_user(bob.id)
        assert (gone.value.status, gone.value.code) == (404, "NOT_FOUND")


async def test_a_refusal_names_status_code_and_field(backend: Backend) -> None:
    """A bad body is 400 BAD_REQUEST naming the field; a wrong key 401."""
    async with api_instance(backend) as running:
        async with ServerApi(running.base_url, API_KEY) as api:
            with pytest.raises(ServerApiError) as bad:
                await api.put_user("x y")
            assert (bad.value.status, bad.value.code) == (400, "BAD_REQUEST")
            ann = running.user("ann")
            with pytest.raises(ServerApiError) as long_name:
                await api.put_user(ann.id, name="x" * 101)
            assert (long_name.value.code, "name" in long_name.value.message) == (
                "BAD_REQUEST", True)
            with pytest.raises(ServerApiError) as unknown:
                await api.disconnect_user(ann.id)
            assert (unknown.value.status, unknown.value.code) == (404, "NOT_FOUND")
        async with ServerApi(running.base_url, "wrong") as wrong:
            with pytest.raises(ServerApiError) as refused:
                await wrong.get_user(ann.id)
            assert refused.value.status == 401


async def test_a_backend_user_id_in_the_path(backend: Backend) -> None:
    """A user id such as `auth0|ann/1` travels percent-encoded in the path."""
    async with api_instance(backend) as running, ServerApi(running.base_url, API_KEY) as api:
        user = await api.put_user("auth0|ann/1", name="Ann")
        assert user.id == "auth0|ann/1"
