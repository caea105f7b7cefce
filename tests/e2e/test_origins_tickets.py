"""Allowed origins and single-use WebSocket tickets (PROTOCOL.md §1, §7)."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from hubbub.domain.clock import parse_time
from tests.conftest import StartServer
from tests.support.client import ChatClient, refused_status
from tests.support.flows import TIMEOUT
from tests.support.server import RunningServer, User

pytestmark = pytest.mark.asyncio(loop_scope="session")

APP = "https://chat.example"


async def upgrade_status(server: RunningServer, query: str,
                         headers: dict[str, str] | None = None) -> int:
    """The HTTP status of an upgrade that must be refused."""
    return await refused_status(server.ws_url + query, headers)


async def new_ticket(server: RunningServer, user: User) -> str:
    async with server.http(user) as http:
        response = await http.post("/api/v1/ws-tickets")
    assert response.status_code == 201, response.text
    ticket: str = response.json()["ticket"]
    return ticket


async def connect_with_ticket(server: RunningServer, ticket: str) -> ChatClient:
    client = await ChatClient.open(f"{server.ws_url}?ticket={ticket}")
    server._clients.append(client)
    return client


# -- Origins --------------------------------------------------------------------------------


async def test_a_listed_origin_may_connect(start_server: StartServer) -> None:
    """A browser page from an allowed origin gets the upgrade."""
    async with start_server(allowed_origins=(APP,)) as server:
        alice = server.user("alice")
        client = await server.connect(alice, origin=APP)
        assert client.connected["user_id"] == alice.id


async def test_an_unlisted_origin_gets_403(start_server: StartServer) -> None:
    """A page from another origin is refused with 403 before the upgrade, token or not."""
    async with start_server(allowed_origins=(APP,)) as server:
        alice = server.user("alice")
        status = await upgrade_status(server, f"?token={alice.token}",
                                      {"Origin": "https://evil.example"})
        assert status == 403
        assert len(server.internals.sockets) == 0
        assert await server.internals.store.get_user(alice.id) is None


async def test_the_403_is_a_json_error(start_server: StartServer) -> None:
    """The refusal explains itself in the §7 error shape."""
    async with start_server(allowed_origins=(APP,)) as server, \
            server.http(server.user()) as http:
        response = await http.get("/ws", headers={"Origin": "https://evil.example"})
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "FORBIDDEN"


async def test_a_client_without_origin_may_connect(start_server: StartServer) -> None:
    """A non-browser client (no Origin header) is not subject to the origin list."""
    async with start_server(allowed_origins=(APP,)) as server:
        client = await server.connect(server.user())
        assert client.connected["type"] == "Connected"


async def test_any_origin_may_connect_without_a_list(server: RunningServer) -> None:
    """With no `allowed_origins`, every origin is accepted."""
    client = await server.connect(server.user(), origin="https://anywhere.example")
    assert client.connected["type"] == "Connected"


# -- Tickets --------------------------------------------------------------------------------


async def test_a_ticket_is_issued_for_30_seconds(server: RunningServer) -> None:
    """`POST /api/v1/ws-tickets` answers 201 with a ticket that expires 30 s from now."""
    alice = server.user("alice")
    async with server.http(alice) as http:
        response = await http.post("/api/v1/ws-tickets")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"ticket", "expires_at"}
    assert len(body["ticket"]) >= 32
    datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert abs(parse_time(body["expires_at"]) / 1e6 - (time.time() + 30)) < 5
    assert response.headers["Cache-Control"] == "no-store"


async def test_a_ticket_opens_a_connection_as_its_user(server: RunningServer) -> None:
    """`/ws?ticket=` upgrades as the user the ticket was issued to."""
    alice = server.user("alice")
    client = await connect_with_ticket(server, await new_ticket(server, alice))
    assert client.connected["user_id"] == alice.id
    assert client.connected["user_name"] == "alice"
    assert (await client.request("Ping", timeout=TIMEOUT))["type"] == "Pong"


async def test_a_ticket_works_only_once(server: RunningServer) -> None:
    """The second upgrade with the same ticket gets 401."""
    ticket = await new_ticket(server, server.user())
    await connect_with_ticket(server, ticket)
    assert await upgrade_status(server, f"?ticket={ticket}") == 401


async def test_an_unknown_ticket_gets_401(server: RunningServer) -> None:
    """A ticket the server never issued is refused."""
    assert await upgrade_status(server, "?ticket=" + "A" * 43) == 401


async def test_a_ticket_needs_a_valid_token(server: RunningServer) -> None:
    """Tickets are issued only against a valid bearer token."""
    async with server.http() as http:
        missing = await http.post("/api/v1/ws-tickets")
        bad = await http.post("/api/v1/ws-tickets", headers={"Authorization": "Bearer x.y.z"})
    assert (missing.status_code, bad.status_code) == (401, 401)
    assert missing.json()["error"]["code"] == "UNAUTHORIZED"


async def test_a_token_in_the_query_wins_over_a_ticket(server: RunningServer) -> None:
    """With both, the token is used and the ticket stays unspent (§1 order)."""
    alice, bob = server.user("alice"), server.user("bob")
    ticket = await new_ticket(server, bob)
    both = await ChatClient.open(f"{server.ws_url}?token={alice.token}&ticket={ticket}")
    await both.close()
    assert both.connected["user_id"] == alice.id
    assert (await connect_with_ticket(server, ticket)).connected["user_id"] == bob.id


async def test_a_ticket_connection_closes_when_its_token_expires(server: RunningServer) -> None:
    """A connection opened by ticket still closes with 4001 at its token's `exp`."""
    alice = server.user("alice", ttl=2)
    client = await connect_with_ticket(server, await new_ticket(server, alice))
    assert await client.wait_closed(6) == 4001
