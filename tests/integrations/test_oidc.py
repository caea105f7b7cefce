"""hubbub beside a real OpenID provider (npm `oidc-provider`, tests/integrations/oidc):
JWT access tokens (RFC 9068, resource indicators) signed RS256, verified by hubbub through
`HUBBUB_JWT_JWKS_URL` from the provider's discovery document. The provider then rotates
its signing key (restarted with a new key first, the old one still published), and the
new tokens keep working without hubbub restarting; a token signed by a key that is not in
the set is refused."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa

from hubbub.client import AuthenticationError
from tests.conftest import StartServer
from tests.support.client import ChatClient
from tests.support.flows import chat
from tests.support.process import free_port
from tests.support.server import RunningServer, User
from tests.support.waiting import until

pytestmark = pytest.mark.asyncio(loop_scope="session")

HERE = Path(__file__).resolve().parent / "oidc"
AUDIENCE = "urn:hubbub"
CLIENTS = [{"id": "svc|alice", "secret": secrets.token_urlsafe(32)},
           {"id": "svc|bob", "secret": secrets.token_urlsafe(32)}]


def private_jwk(kid: str) -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(key, as_dict=True)
    return {**jwk, "kid": kid, "alg": "RS256", "use": "sig"}


@dataclass
class OpenIdProvider:
    """The provider as a child process, restartable with another set of keys."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, keys: list[dict[str, Any]], signing_kid: str) -> None:
        node = shutil.which("node")
        assert node, "node is needed (Debian's nodejs; .ci/run installs npm, which brings it)"
        assert (HERE / "node_modules" / "oidc-provider").is_dir(), \
            "run `npm ci` in tests/integrations/oidc (`make install` does)"
        keys_file = self.workdir / f"keys-{signing_kid}.json"
        keys_file.write_text(json.dumps(keys))
        env = {**os.environ, "PORT": str(self.port), "OIDC_KEYS": str(keys_file),
               "OIDC_SIGNING_KID": signing_kid, "OIDC_AUDIENCE": AUDIENCE,
               "OIDC_CLIENTS": json.dumps(CLIENTS), "NODE_ENV": "test"}
        self.process = await asyncio.create_subprocess_exec(
            node, str(HERE / "provider.js"), cwd=HERE, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 60)
        assert line.strip() == b"ready", line

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), 15)
        self.process = None

    async def jwks_uri(self) -> str:
        async with httpx.AsyncClient() as http:
            discovery = await http.get(f"{self.issuer}/.well-known/openid-configuration")
        assert discovery.status_code == 200, discovery.text
        uri: str = discovery.json()["jwks_uri"]
        return uri

    async def access_token(self, client: dict[str, str]) -> str:
        """The client credentials grant with a resource indicator: a JWT access token."""
        async with httpx.AsyncClient() as http:
            response = await http.post(f"{self.issuer}/token", data={
                "grant_type": "client_credentials", "client_id": client["id"],
                "client_secret": client["secret"], "resource": AUDIENCE, "scope": "chat"})
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        assert token.count(".") == 2, "not a JWT access token"
        return token


@pytest_asyncio.fixture(loop_scope="session")
async def provider(tmp_path: Path) -> AsyncIterator[OpenIdProvider]:
    running = OpenIdProvider(tmp_path)
    try:
        yield running
    finally:
        await running.stop()


async def connects(server: RunningServer, token: str) -> bool:
    """Whether `token` opens `/ws` (False: refused with 401, as §1 says)."""
    try:
        client = await ChatClient.connect(server.ws_url, token)
    except AuthenticationError as refused:
        if refused.status != 401:
            raise AssertionError(f"refused with {refused.status}, not 401") from None
        return False
    await client.close()  # it was greeted with `Connected` (ChatClient.open checks)
    return True


async def test_oidc_tokens_verify_by_jwks_and_survive_a_key_rotation(
        provider: OpenIdProvider, start_server: StartServer) -> None:
    first, second = private_jwk("key-1"), private_jwk("key-2")
    await provider.start([first], "key-1")
    async with start_server(rate_limits=False, jwt_secret=None,
                            jwt_jwks_url=await provider.jwks_uri(),
                            jwt_issuer=provider.issuer, jwt_audience=AUDIENCE,
                            jwt_jwks_cooldown=1) as server:
        alice_token = await provider.access_token(CLIENTS[0])
        assert jwt.get_unverified_header(alice_token)["kid"] == "key-1"
        alice_ws = await server.connect(User(CLIENTS[0]["id"], "alice", alice_token))
        assert alice_ws.connected["user_id"] == "svc|alice"
        assert alice_ws.connected["user_name"] == "client svc|alice"

        # Rotation: the provider signs with a new key, and publishes the old one beside it.
        await provider.stop()
        await provider.start([second, first], "key-2")
        bob_token = await provider.access_token(CLIENTS[1])
        assert jwt.get_unverified_header(bob_token)["kid"] == "key-2"
        # hubbub fetched the set when key-1 first appeared; key-2 is fetched on its first
        # sight once the (1 s) cooldown allows.
        await until(lambda: connects(server, bob_token), "a key-2 token connects", within=20,
                    every=0.3)
        bob_ws = await server.connect(User(CLIENTS[1]["id"], "bob", bob_token))
        assert bob_ws.connected["user_id"] == "svc|bob"
        assert await connects(server, alice_token)  # the old key still verifies

        # The two chat.
        async with server.http(User("svc|alice", "alice", alice_token)) as http:
            created = await http.post("/api/v1/conversations",
                                      json={"kind": "direct", "member_ids": ["svc|bob"]})
        assert created.status_code == 201, created.text
        conversation_id = created.json()["id"]
        heard = await chat(alice_ws, bob_ws, conversation_id, "rotated")
        assert heard["sender_id"] == "svc|alice"

        # A key not in the set: refused, whether its kid is unknown or borrowed.
        payload = jwt.decode(bob_token, options={"verify_signature": False})
        payload["exp"] = int(time.time()) + 300
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        for kid in ("key-3", "key-2"):
            forged = jwt.encode(payload, stranger, algorithm="RS256",
                                headers={"kid": kid, "typ": "at+jwt"})
            assert not await connects(server, forged)
