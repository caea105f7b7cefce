"""Authentication failures beyond the basic token cases of test_connect.py (PROTOCOL.md §1):
headers, algorithms, time claims, issuer and audience, asymmetric keys."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest
import websockets
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import StartServer
from tests.support.client import ChatClient
from tests.support.server import RunningServer

pytestmark = pytest.mark.asyncio(loop_scope="session")


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    value: dict[str, Any] = {"sub": str(uuid.uuid4()), "exp": now + 60, "iat": now}
    value.update(overrides)
    return value


def sign(server: RunningServer, payload: dict[str, Any], algorithm: str = "HS256") -> str:
    assert server.settings.jwt_secret is not None
    return jwt.encode(payload, server.settings.jwt_secret, algorithm=algorithm)


async def upgrade_status(server: RunningServer, query: str = "",
                         headers: dict[str, str] | None = None) -> int:
    """The HTTP status of an upgrade that must be refused."""
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(server.ws_url + query, additional_headers=headers or {})
    return refused.value.response.status_code


async def connects(server: RunningServer, token: str) -> dict[str, Any]:
    """Connect with `token`, return `Connected`, and close again."""
    client = await ChatClient.connect(server.ws_url, token)
    try:
        return client.connected
    finally:
        await client.close()


@pytest.mark.parametrize("header", ["Bearer not.a.jwt", "Basic dXNlcjpwYXNz", "Bearer",
                                    "Token {good}"])
async def test_a_bad_authorization_header_gets_401(server: RunningServer, header: str) -> None:
    """Without a query token, a malformed or non-Bearer header is refused."""
    good = server.user().token
    status = await upgrade_status(server, headers={"Authorization": header.format(good=good)})
    assert status == 401


async def test_a_bad_query_token_is_not_rescued_by_a_good_header(
        server: RunningServer) -> None:
    """The query token is the one checked when present (§1 order)."""
    good = server.user().token
    status = await upgrade_status(server, "?token=not.a.jwt",
                                  {"Authorization": f"Bearer {good}"})
    assert status == 401


async def test_an_algorithm_other_than_the_configured_one_gets_401(
        server: RunningServer) -> None:
    """HS512 with the right secret is still refused when HS256 is configured."""
    assert server.settings.jwt_secret is not None
    secret = server.settings.jwt_secret * 4  # long enough for HS512 (RFC 7518 §3.2)
    token = jwt.encode(claims(), secret, algorithm="HS512")
    assert await upgrade_status(server, f"?token={token}") == 401


async def test_a_token_before_its_nbf_gets_401(server: RunningServer) -> None:
    """A token whose `nbf` lies in the future is not valid yet."""
    token = sign(server, claims(nbf=int(time.time()) + 600))
    assert await upgrade_status(server, f"?token={token}") == 401


async def test_an_iat_slightly_in_the_future_is_accepted(server: RunningServer) -> None:
    """An issuer whose clock runs a few seconds ahead still mints usable tokens."""
    payload = claims(iat=int(time.time()) + 5)
    connected = await connects(server, sign(server, payload))
    assert connected["user_id"] == payload["sub"]


async def test_a_name_that_is_not_a_string_gets_401(server: RunningServer) -> None:
    """`name`, when present, must be a string."""
    token = sign(server, claims(name={"first": "alice"}))
    assert await upgrade_status(server, f"?token={token}") == 401


async def test_the_name_claim_names_the_user(server: RunningServer) -> None:
    """`Connected.user_name` is the token's `name`, and a token without one gets a default."""
    named = await connects(server, sign(server, claims(name="  Alice  ")))
    assert named["user_name"] == "Alice"
    payload = claims()
    unnamed = await connects(server, sign(server, payload))
    assert unnamed["user_name"] == f"user-{payload['sub'][:8]}"


async def test_issuer_and_audience_are_enforced_when_configured(
        start_server: StartServer) -> None:
    """With `jwt_issuer` and `jwt_audience` set, tokens must carry both, matching."""
    async with start_server(rate_limits=False, jwt_issuer="https://auth.example",
                            jwt_audience="hubbub") as server:
        good = claims(iss="https://auth.example", aud="hubbub")
        assert (await connects(server, sign(server, good)))["user_id"] == good["sub"]
        for bad in (claims(iss="https://other.example", aud="hubbub"),
                    claims(iss="https://auth.example", aud="someone-else"),
                    claims(aud="hubbub"), claims(iss="https://auth.example")):
            assert await upgrade_status(server, f"?token={sign(server, bad)}") == 401
        async with server.http() as http:
            response = await http.get("/api/v1/users/me", headers={
                "Authorization": f"Bearer {sign(server, claims())}"})
        assert response.status_code == 401


async def test_es256_tokens_verify_against_a_public_key(start_server: StartServer) -> None:
    """With a public key configured, ES256 tokens from its private key connect and HS256
    tokens signed with the shared secret do not."""
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    async with start_server(rate_limits=False, jwt_public_key=public,
                            jwt_algorithms=("ES256",)) as server:
        payload = claims()
        token = jwt.encode(payload, private, algorithm="ES256")
        assert (await connects(server, token))["user_id"] == payload["sub"]
        assert await upgrade_status(server, f"?token={sign(server, claims())}") == 401
        stranger = ec.generate_private_key(ec.SECP256R1())
        forged = jwt.encode(claims(), stranger, algorithm="ES256")
        assert await upgrade_status(server, f"?token={forged}") == 401


async def rest_status(server: RunningServer, token: str) -> tuple[int, str]:
    """`GET /api/v1/users/me` with `token`: the status and the error message, if any."""
    async with server.http() as http:
        response = await http.get("/api/v1/users/me",
                                  headers={"Authorization": f"Bearer {token}"})
    message = response.json()["error"]["message"] if response.status_code >= 400 else ""
    return response.status_code, message


@pytest.mark.parametrize(("claim", "value"), [
    ("exp", 1e308), ("exp", float("nan")), ("exp", float("inf")), ("exp", 10**400),
    ("exp", 2**53), ("exp", True),
    ("nbf", float("nan")), ("nbf", float("-inf")), ("nbf", 1e308), ("nbf", 10**400),
], ids=repr)
async def test_a_time_claim_out_of_range_gets_401_and_counts_nothing(
        server: RunningServer, claim: str, value: object) -> None:
    """`exp` and `nbf` beyond year 9999, infinite, NaN (Python's JSON parser reads `NaN`)
    or not a number are refused on `/ws` and REST alike, naming the claim; the user is not
    registered and no connection of it is counted."""
    payload = claims(**{claim: value})
    token = sign(server, payload)
    assert await upgrade_status(server, f"?token={token}") == 401
    status, message = await rest_status(server, token)
    assert status == 401
    assert message.startswith(f"invalid token: {claim} "), message
    internals = server.internals
    assert await internals.store.get_user(payload["sub"]) is None
    assert await internals.presence.online([payload["sub"]]) == set()
    assert internals.hub.connections_of(payload["sub"]) == ()
