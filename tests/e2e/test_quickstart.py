"""The README's quick start: `make run` (a server in development mode, without a configured
secret), tokens from `hubbub token`, and two users chatting — what a newcomer does in their
first minute."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.support.client import ChatClient
from tests.support.process import ServerProcess

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def hubbub_token(workdir: Path, database_url: str, name: str) -> str:
    """Run `hubbub token --name NAME` as a newcomer would, with no secret configured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBBUB_")}
    env["HUBBUB_DATABASE_URL"] = database_url
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hubbub", "token", "--name", name, cwd=workdir, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode().strip()


async def test_two_newcomers_chat_with_tokens_from_the_cli(tmp_path: Path) -> None:
    """With no HUBBUB_JWT_SECRET, `serve --dev` (what `make run` runs) and `hubbub token`
    share a generated secret."""
    database_url = f"sqlite:///{tmp_path / 'hubbub.db'}"
    server = ServerProcess(database_url, tmp_path, extra_env={"HUBBUB_JWT_SECRET": ""},
                           args=("--dev",))
    await server.start()
    try:
        assert (tmp_path / "hubbub.db.jwt-secret").exists()
        alice_token = await hubbub_token(tmp_path, database_url, "alice")
        bob_token = await hubbub_token(tmp_path, database_url, "bob")
        alice = await ChatClient.connect(server.ws_url, alice_token)
        bob = await ChatClient.connect(server.ws_url, bob_token)
        try:
            assert (alice.connected["user_name"], bob.connected["user_name"]) == ("alice", "bob")
            async with server.http() as http:
                created = await http.post(
                    "/api/v1/conversations", json={"kind": "channel", "name": "general"},
                    headers={"Authorization": f"Bearer {alice_token}"},
                )
            assert created.status_code == 201, created.text
            channel = created.json()["id"]
            for client in (alice, bob):
                joined = await client.request("JoinConversation", conversation_id=channel)
                assert joined["type"] == "ActionConfirmed"
            sent = await alice.request("SendMessage", conversation_id=channel, content="hi bob")
            assert sent["type"] == "ActionConfirmed"
            heard = await bob.expect("NewMessage")
            assert heard["message"]["content"] == "hi bob"
            assert heard["message"]["sender_name"] == "alice"
        finally:
            await alice.close()
            await bob.close()
    finally:
        await server.stop()
