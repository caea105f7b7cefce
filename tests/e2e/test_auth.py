"""Authentication failures beyond the basic token cases of test_connect.py (PROTOCOL.md §1):
headers, algorithms, time claims, issuer and audience, asymmetric keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from hubbub.client import AuthenticationError
from tests.conftest import StartServer
from tests.support.client import ChatClient, refused_status
from tests.support.rawws import RawClient
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
    return await refused_status(server.ws_url + query, headers)


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


async def test_the_query_token_is_found_among_other_parameters_and_percent_decoded(
        server: RunningServer) -> None:
    """§1's `token` is read from the raw request target: any position, escapes decoded."""
    user = server.user()
    escaped = user.token.replace(".", "%2E")
    # The raw client sends the target as written (an HTTP client may normalise `%2E`).
    async with await RawClient.connect(server.port,
                                       f"/ws?a=1&b=&token={escaped}&c") as raw:
        frame = await raw.recv_frame()
    assert frame is not None
    connected = json.loads(frame.payload)
    assert connected["type"] == "Connected"
    assert connected["user_id"] == user.id


async def test_an_algorithm_other_than_the_configured_one_gets_401(
        server: RunningServer) -> None:
    """HS512 with the right secret is still refused when HS256 is configured."""
    assert server.settings.jwt_secret is not None
    secret = server.settings.jwt_secret * 4  # long enough for HS512 (RFC 7518 §3.2)
    token = jwt.encode(claims(), secret, algorithm="HS512")
    assert await upgrade_status(server, f"?token={token}") == 401


def signed_segments(header: bytes, payload: bytes, secret: str) -> str:
    """A token built by hand from raw JSON, so that claims PyJWT would not write are possible."""
    def segment(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    signing_input = f"{segment(header)}.{segment(payload)}"
    digest = hmac.digest(secret.encode(), signing_input.encode(), hashlib.sha256)
    return f"{signing_input}.{segment(digest)}"


async def test_a_remembered_token_header_vouches_for_no_signature(
        server: RunningServer) -> None:
    """The quick check remembers a backend's token header once a token with it verified:
    a forged token with the same header, or a good signature on other claims, is still 401,
    and JSON only PyJWT's reader takes (`NaN`) still connects, through PyJWT."""
    secret = server.settings.jwt_secret
    assert secret is not None
    header = b'{"alg":"HS256","typ":"JWT","kid":"e2e"}'
    user_id = str(uuid.uuid4())
    exp = int(time.time()) + 60
    good = signed_segments(header, json.dumps({"sub": user_id, "exp": exp}).encode(), secret)
    assert (await connects(server, good))["user_id"] == user_id  # the header is known now

    forged = signed_segments(header, json.dumps({"sub": user_id, "exp": exp}).encode(),
                             secret + "-not-the-key")
    assert await upgrade_status(server, f"?token={forged}") == 401
    mallory = signed_segments(header, json.dumps({"sub": "mallory", "exp": exp}).encode(),
                              secret)
    moved = mallory.rpartition(".")[0] + "." + good.rpartition(".")[2]
    assert await upgrade_status(server, f"?token={moved}") == 401

    nan = signed_segments(header, b'{"sub": "%s", "exp": %d, "score": NaN}' % (
        user_id.encode(), exp), secret)
    assert (await connects(server, nan))["user_id"] == user_id
    assert (await connects(server, good))["user_id"] == user_id  # nothing was spoilt


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
        hs256 = jwt.encode(claims(), "a-shared-secret-long-enough-for-hs256-0123456789")
        assert await upgrade_status(server, f"?token={hs256}") == 401
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


async def test_leeway_admits_a_little_clock_skew_on_exp_and_nbf(
        start_server: StartServer) -> None:
    """`HUBBUB_JWT_LEEWAY=30`: a token expired 10 s ago, or valid only in 20 s, connects;
    beyond the leeway it is refused. Without it both are refused (tests above)."""
    async with start_server(rate_limits=False, jwt_leeway=30) as server:
        now = int(time.time())
        for payload in (claims(exp=now - 10), claims(nbf=now + 20)):
            assert (await connects(server, sign(server, payload)))["user_id"] == payload["sub"]
        for payload in (claims(exp=now - 60), claims(nbf=now + 90)):
            assert await upgrade_status(server, f"?token={sign(server, payload)}") == 401


async def test_a_refresh_token_is_refused_naming_token_type(server: RunningServer) -> None:
    """A backend that marks its tokens (SimpleJWT's `token_type`): only `access` opens
    `/ws` or calls the API; `access` itself connects."""
    refresh = sign(server, claims(token_type="refresh"))
    assert await upgrade_status(server, f"?token={refresh}") == 401
    status, message = await rest_status(server, refresh)
    assert (status, "token_type" in message) == (401, True)
    access = claims(token_type="access")
    assert (await connects(server, sign(server, access)))["user_id"] == access["sub"]


async def test_the_user_and_name_claims_are_configurable(start_server: StartServer) -> None:
    """Django SimpleJWT's shape: `user_id` an integer, the name in `username`."""
    async with start_server(rate_limits=False, jwt_user_claim="user_id",
                            jwt_name_claim="username") as server:
        now = int(time.time())
        token = sign(server, {"user_id": 42, "username": "dj", "exp": now + 60})
        connected = await connects(server, token)
        assert (connected["user_id"], connected["user_name"]) == ("42", "dj")
        assert await upgrade_status(server, f"?token={sign(server, claims())}") == 401


class Jwks:
    """A JWKS endpoint on 127.0.0.1 whose keys a test rotates; it counts its fetches."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.published: list[dict[str, Any]] = []
        self.fetches = 0
        self.url = ""
        self.stop: Callable[[], Awaitable[None]] | None = None

    def add(self, kid: str, private: Any) -> None:
        self.keys[kid] = private
        self.published.append({**_jwk(private.public_key()), "kid": kid, "use": "sig"})

    def drop(self, kid: str) -> None:
        self.published = [k for k in self.published if k["kid"] != kid]

    def sign(self, kid: str, algorithm: str, **overrides: Any) -> str:
        return jwt.encode(claims(**overrides), self.keys[kid], algorithm=algorithm,
                          headers={"kid": kid})

    async def serve(self, request: web.Request) -> web.Response:
        self.fetches += 1
        return web.json_response({"keys": self.published})


def _jwk_json(public: Any) -> str:
    if isinstance(public, rsa.RSAPublicKey):
        return jwt.algorithms.RSAAlgorithm.to_jwk(public)
    if isinstance(public, ec.EllipticCurvePublicKey):
        return jwt.algorithms.ECAlgorithm.to_jwk(public)
    return jwt.algorithms.OKPAlgorithm.to_jwk(public)


def _jwk(public: Any) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(_jwk_json(public))
    return value


@asynccontextmanager
async def jwks_endpoint() -> AsyncIterator[Jwks]:
    jwks = Jwks()
    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", jwks.serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    jwks.url = f"http://127.0.0.1:{runner.addresses[0][1]}/.well-known/jwks.json"
    jwks.stop = runner.cleanup
    try:
        yield jwks
    finally:
        await runner.cleanup()


async def test_jwks_keys_by_kid_for_rs256_es256_and_eddsa(start_server: StartServer) -> None:
    """`HUBBUB_JWT_JWKS_URL`: each token's key is the one its `kid` names; a token signed
    by a key not in the set, or naming no published kid, is refused."""
    async with jwks_endpoint() as jwks:
        jwks.add("rsa-1", rsa.generate_private_key(public_exponent=65537, key_size=2048))
        jwks.add("ec-1", ec.generate_private_key(ec.SECP256R1()))
        jwks.add("ed-1", ed25519.Ed25519PrivateKey.generate())
        async with start_server(rate_limits=False, jwt_secret=None,
                                jwt_jwks_url=jwks.url) as server:
            for kid, algorithm in (("rsa-1", "RS256"), ("ec-1", "ES256"), ("ed-1", "EdDSA")):
                sub = f"auth0|{kid}"
                connected = await connects(server, jwks.sign(kid, algorithm, sub=sub))
                assert connected["user_id"] == sub
            assert jwks.fetches == 1  # cached
            stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            forged = jwt.encode(claims(), stranger, algorithm="RS256",
                                headers={"kid": "rsa-1"})
            unknown = jwt.encode(claims(), stranger, algorithm="RS256",
                                 headers={"kid": "nobody"})
            for token in (forged, unknown):
                assert await upgrade_status(server, f"?token={token}") == 401
            status, _ = await rest_status(server, unknown)
            assert status == 401


async def test_a_rotated_key_works_without_a_restart_and_refreshes_are_rate_limited(
        start_server: StartServer) -> None:
    """The backend publishes a new key and signs with it: the unknown `kid` makes hubbub
    fetch the set again (once per cooldown, however many made-up kids arrive), and the
    new tokens connect; a key dropped from the set stops verifying after a refresh."""
    async with jwks_endpoint() as jwks:
        jwks.add("k1", rsa.generate_private_key(public_exponent=65537, key_size=2048))
        async with start_server(rate_limits=False, jwt_secret=None, jwt_jwks_url=jwks.url,
                                jwt_jwks_cooldown=0.5) as server:
            assert (await connects(server, jwks.sign("k1", "RS256")))["type"] == "Connected"
            jwks.add("k2", ec.generate_private_key(ec.SECP256R1()))
            jwks.drop("k1")
            deadline = time.monotonic() + 10
            while True:  # the first fetch may still be within its cooldown
                try:
                    await connects(server, jwks.sign("k2", "ES256"))
                    break
                except AuthenticationError:
                    assert time.monotonic() < deadline, "the rotated key never verified"
            dropped = jwks.sign("k1", "RS256")
            assert await upgrade_status(server, f"?token={dropped}") == 401
            before = jwks.fetches
            stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            for n in range(20):
                made_up = jwt.encode(claims(), stranger, algorithm="RS256",
                                     headers={"kid": f"made-up-{n}"})
                assert await upgrade_status(server, f"?token={made_up}") == 401
            assert jwks.fetches - before <= 3  # 20 unknown kids, a fetch per 0.5 s at most


async def test_known_keys_keep_verifying_while_the_jwks_endpoint_is_down(
        start_server: StartServer) -> None:
    """The cached set has expired and the endpoint no longer answers: tokens of the keys
    last read still connect (an identity provider's outage logs nobody out), others not."""
    async with jwks_endpoint() as jwks:
        jwks.add("k1", ec.generate_private_key(ec.SECP256R1()))
        async with start_server(rate_limits=False, jwt_secret=None, jwt_jwks_url=jwks.url,
                                jwt_jwks_lifespan=0.2, jwt_jwks_cooldown=0.2) as server:
            assert (await connects(server, jwks.sign("k1", "ES256")))["type"] == "Connected"
            assert jwks.stop is not None
            await jwks.stop()
            started = time.monotonic()
            while time.monotonic() - started < 1.0:  # several lifespans and cooldowns
                assert (await connects(server, jwks.sign("k1", "ES256")))["type"] == (
                    "Connected")
            stranger = ec.generate_private_key(ec.SECP256R1())
            other = jwt.encode(claims(), stranger, algorithm="ES256", headers={"kid": "k2"})
            assert await upgrade_status(server, f"?token={other}") == 401
