"""Connecting: authentication before the upgrade and the greeting (PROTOCOL.md §1)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import httpx
import jwt
import pytest

from hubbub.client import Socket
from hubbub.protocol.server import Connected
from tests.support.client import refused_status
from tests.support.server import RunningServer

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def handshake_status(server: RunningServer, query: str = "",
                           headers: dict[str, str] | None = None) -> int:
    """The HTTP status of an upgrade attempt that is expected to be refused."""
    return await refused_status(server.ws_url + query, headers)


async def test_connected_is_the_first_message(server: RunningServer) -> None:
    """A valid token gets an upgrade and `Connected` naming the user."""
    alice = server.user("alice")
    client = await server.connect(alice)
    assert client.connected["user_id"] == alice.id
    assert client.connected["user_name"] == "alice"
    assert client.connected["heartbeat_interval_ms"] > 0
    assert client.connected["limits"]["max_frame_bytes"] == server.settings.max_frame_bytes


async def test_bearer_header_is_accepted(server: RunningServer) -> None:
    """The token may come in `Authorization: Bearer` instead of the query (the SDK's way)."""
    alice = server.user("alice")
    async with aiohttp.ClientSession() as session:
        socket = await Socket.open(session, server.ws_url, alice.token)
        first = await asyncio.wait_for(socket.receive(), 10)
        await socket.close()
    assert isinstance(first, Connected)
    assert first.user_id == alice.id


def _sign(server: RunningServer, claims: dict[str, object], key: str | None = None,
          algorithm: str = "HS256") -> str:
    secret = key or server.settings.jwt_secret
    assert secret is not None
    return jwt.encode(claims, secret, algorithm=algorithm)


@pytest.mark.parametrize("case", ["missing", "malformed", "expired", "wrong_key", "alg_none",
                                  "sub_with_space", "sub_too_long", "refresh", "no_exp",
                                  "no_sub"])
async def test_bad_tokens_get_401_before_upgrade(server: RunningServer, case: str) -> None:
    """Every kind of bad token is refused with HTTP 401 and no upgrade."""
    now = int(time.time())
    sub = "6f1c2a9e-3b7d-4c55-9a1e-0d2f4b6c8a10"
    tokens = {
        "missing": None,
        "malformed": "not.a.jwt",
        "expired": _sign(server, {"sub": sub, "exp": now - 10}),
        "wrong_key": _sign(server, {"sub": sub, "exp": now + 60},
                           key="another-secret-that-is-long-enough-for-hs256"),
        "alg_none": jwt.encode({"sub": sub, "exp": now + 60}, "", algorithm="none"),
        "sub_with_space": _sign(server, {"sub": "alice smith", "exp": now + 60}),
        "sub_too_long": _sign(server, {"sub": "x" * 129, "exp": now + 60}),
        "refresh": _sign(server, {"sub": sub, "exp": now + 60, "token_type": "refresh"}),
        "no_exp": _sign(server, {"sub": sub}),
        "no_sub": _sign(server, {"exp": now + 60}),
    }
    token = tokens[case]
    query = "" if token is None else f"?token={token}"
    assert await handshake_status(server, query) == 401


async def test_401_body_is_a_json_error(server: RunningServer) -> None:
    """A refused handshake explains itself in the §7 error shape."""
    async with httpx.AsyncClient() as http:
        response = await http.get(server.base_url + "/ws?token=nope")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHORIZED"
