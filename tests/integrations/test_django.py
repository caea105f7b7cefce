"""hubbub beside a real Django backend (tests/integrations/django_app): Django users with
integer ids log in through SimpleJWT's `TokenObtainPairView` over HTTP, and the access
token it issues connects to hubbub configured with `HUBBUB_JWT_SECRET` = Django's
`SECRET_KEY` and `HUBBUB_JWT_USER_CLAIM=user_id`. The refresh token of the same response is
refused; two Django users chat."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest
import pytest_asyncio

from tests.conftest import StartServer
from tests.support.client import refused_status
from tests.support.flows import chat
from tests.support.process import free_port
from tests.support.server import User
from tests.support.waiting import until

pytestmark = pytest.mark.asyncio(loop_scope="session")

APP = Path(__file__).resolve().parent / "django_app"
USERS = {"alice": "alice-password-1", "bob": "bob-password-2"}
CREATE_USERS = (
    "from django.contrib.auth.models import User\n"
    "import json, sys\n"
    "for name, password in json.loads(sys.argv[-1]).items():\n"
    "    User.objects.create_user(name, password=password)\n"
)


@dataclass
class Django:
    url: str
    secret: str


async def manage(env: dict[str, str], *args: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "manage.py", *args, cwd=APP, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, output.decode(errors="replace")


@pytest_asyncio.fixture(loop_scope="session")
async def django(tmp_path: Path) -> AsyncIterator[Django]:
    """The Django project migrated, with two users, served by `runserver` on a free port."""
    secret = secrets.token_urlsafe(48)
    env = {**os.environ, "DJANGO_SECRET_KEY": secret,
           "DJANGO_DATABASE": str(tmp_path / "django.sqlite3"), "PYTHONPATH": str(APP)}
    await manage(env, "migrate", "--no-input", "-v", "0")
    await manage(env, "shell", "-c", CREATE_USERS.replace("sys.argv[-1]",
                                                          repr(json.dumps(USERS))))
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload",
        cwd=APP, env=env, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    async def answers() -> bool:
        assert process.returncode is None, "runserver exited"
        try:
            async with httpx.AsyncClient(base_url=url) as http:
                await http.get("/api/token/")
        except httpx.TransportError:
            return False
        return True

    try:
        await until(answers, "Django answers", within=60, every=0.2)
        yield Django(url, secret)
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 15)


async def log_in(django: Django, name: str) -> dict[str, str]:
    """SimpleJWT's `TokenObtainPairView`: `{"access": …, "refresh": …}`."""
    async with httpx.AsyncClient(base_url=django.url) as http:
        response = await http.post("/api/token/",
                                   json={"username": name, "password": USERS[name]})
    assert response.status_code == 200, response.text
    pair: dict[str, str] = response.json()
    return pair


async def test_django_users_connect_and_chat_and_refresh_tokens_are_refused(
        django: Django, start_server: StartServer) -> None:
    async with start_server(rate_limits=False, jwt_secret=django.secret,
                            jwt_user_claim="user_id") as server:
        alice_pair, bob_pair = await log_in(django, "alice"), await log_in(django, "bob")
        alice_ws = await server.connect(User("?", "alice", alice_pair["access"]))
        alice_id = alice_ws.connected["user_id"]
        assert alice_id.isdigit()  # Django's integer primary key, as its decimal string
        for refresh in (alice_pair["refresh"], bob_pair["refresh"]):
            assert await refused_status(f"{server.ws_url}?token={refresh}") == 401
            async with httpx.AsyncClient(base_url=server.base_url) as http:
                response = await http.get("/api/v1/users/me",
                                          headers={"Authorization": f"Bearer {refresh}"})
            assert response.status_code == 401
            assert "token_type" in response.json()["error"]["message"]
        bob = User("?", "bob", bob_pair["access"])
        async with server.http(User(alice_id, "alice", alice_pair["access"])) as http:
            # The backend knows Bob's id (here read from his token); he has not connected.
            bob_id = str(jwt.decode(bob_pair["access"],
                                    options={"verify_signature": False})["user_id"])
            created = await http.post("/api/v1/conversations",
                                      json={"kind": "direct", "member_ids": [bob_id]})
        assert created.status_code == 201, created.text
        conversation_id = created.json()["id"]
        bob_ws = await server.connect(bob)
        assert bob_ws.connected["user_id"] == bob_id
        heard = await chat(alice_ws, bob_ws, conversation_id, "hello from Django")
        assert heard["sender_id"] == alice_id
