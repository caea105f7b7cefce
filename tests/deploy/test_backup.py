"""The SQLite backup of docs/DEPLOYMENT.md, run as documented against a server that keeps
writing: the copy is consistent and a server started on it has every message that was
acknowledged before the backup began."""

from __future__ import annotations

import asyncio
import itertools
import re
import sqlite3
import sys
from pathlib import Path

import pytest

from hubbub.config import Settings
from tests.support.flows import joined, rest_messages, send
from tests.support.server import run_server

pytestmark = pytest.mark.asyncio(loop_scope="session")

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "DEPLOYMENT.md"


def documented_backup() -> str:
    """The Python one-liner the guide gives for an online SQLite backup."""
    found = re.search(r"python3 -c '([^']+)'", GUIDE.read_text())
    assert found is not None, "the guide lost its Python backup command"
    return found.group(1)


async def test_an_online_backup_holds_every_acknowledged_message(tmp_path: Path) -> None:
    live, copy = tmp_path / "hubbub.db", tmp_path / "backup.db"
    settings = Settings(database_url=f"sqlite:///{live}", rate_limits=False,
                        log_format="text")
    async with run_server(settings) as server:
        alice = server.user("alice")
        room = (await server.create_conversation(alice))["id"]
        client = await joined(server, alice, room)
        before = [await send(client, room, f"before {n}") for n in range(50)]
        stop = asyncio.Event()

        async def keep_sending() -> None:
            for n in itertools.count():
                if stop.is_set():
                    return
                await send(client, room, f"during {n}")

        writer = asyncio.create_task(keep_sending())
        backup = await asyncio.create_subprocess_exec(
            sys.executable, "-c", documented_backup(), str(live), str(copy))
        assert await backup.wait() == 0
        stop.set()
        await writer
        secret = server.settings.jwt_secret

    with sqlite3.connect(copy) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    restored = Settings(database_url=f"sqlite:///{copy}", jwt_secret=secret,
                        rate_limits=False, log_format="text")
    async with run_server(restored) as server:
        messages = await rest_messages(server, alice, room)
    assert {m["id"] for m in before} <= {m["id"] for m in messages}
    versions = [m["version"] for m in messages]
    assert versions == list(range(1, len(versions) + 1)), "the copy is one moment's state"
