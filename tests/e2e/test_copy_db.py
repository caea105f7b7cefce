"""`hubbub copy-db` (src/hubbub/adapters/sql/copy.py): a database made by real traffic on SQLite,
copied to PostgreSQL and back, serves the same conversations through the API; and what it
refuses: a non-empty target, a missing source.

Each copy runs as an operator runs it, `python -m hubbub copy-db`, between servers that
are stopped; the servers are real ones on the copied files and databases.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from hubbub.adapters.sql.copy import Mismatch, verify
from hubbub.adapters.sql.dialect import dialect_for
from hubbub.adapters.sql.schema import metadata, users
from hubbub.config import Settings
from tests.support.cluster import postgres_database
from tests.support.flows import TIMEOUT, attachment, joined, rest_messages, send
from tests.support.replica import normalised
from tests.support.server import RunningServer, User, run_server
from tests.support.server_api import API_KEY, ServerApi
from tests.support.services import PostgresDatabase

pytestmark = pytest.mark.asyncio(loop_scope="session")


def create_engine(url: str) -> AsyncEngine:
    """The database's main engine, as the server would open it."""
    driver_url, dialect = dialect_for(url)
    return dialect.create_engine(driver_url)

# A cold interpreter that migrates two databases, on a loaded two-core machine.
COPY_TIMEOUT_S = 120.0
# Smaller than most tables here, so that every table is streamed in several batches.
SMALL_BATCH = 3
_MEDIA = "s=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
OFFER_SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n" + _MEDIA
ANSWER_SDP = "v=0\r\no=- 2 1 IN IP4 127.0.0.1\r\n" + _MEDIA


@dataclass
class World:
    """Who took part, and where."""

    users: list[User] = field(default_factory=list)
    conversations: list[str] = field(default_factory=list)


async def copy_db(*args: str) -> tuple[int, str, str]:
    """`hubbub copy-db ARGS` to its end: status, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hubbub", "copy-db", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), COPY_TIMEOUT_S)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


# Webhooks for a receiver that is never there: the events stay in the outbox, a table
# copied like the others.
OUTBOX = {"webhook_url": "http://127.0.0.1:9/hooks", "webhook_secret": "whsec_" + "A" * 32,
          "webhook_retry_base": 3600.0}


def settings(database_url: str, secret: str, **overrides: Any) -> Settings:
    return Settings(database_url=database_url, jwt_secret=secret, rate_limits=False,
                    log_format="text", api_keys=(API_KEY,), **overrides)


async def ok(client: Any, type_: str, **fields: Any) -> dict[str, Any]:
    reply: dict[str, Any] = await client.request(type_, timeout=TIMEOUT, **fields)
    assert reply["type"] == "ActionConfirmed", reply
    return reply


async def traffic(server: RunningServer) -> World:
    """What the e2e suite does, in one place: sends (a reply, attachments, a retried
    client id, a mention), edits, deletes, reactions added and removed, receipts, read marks, an
    invited member who never accepted, a direct conversation with an answered call and a
    rejected one."""
    alice, bob, carol, dave = (server.user(name) for name in ("alice", "bob", "carol", "dave"))
    world = World(users=[alice, bob, carol, dave])
    room = (await server.create_conversation(alice, name="general",
                                             members=[bob, carol]))["id"]
    a, b = await joined(server, alice, room), await joined(server, bob, room)
    sent = [(await send(a if n % 3 else b, room, f"message {n}"))["id"] for n in range(8)]
    await send(a, room, "a picture", attachments=[attachment()], parent_id=sent[0],
               client_message_id="c-1")
    await send(a, room, "a picture", attachments=[attachment()], parent_id=sent[0],
               client_message_id="c-1")  # the retry stores nothing new
    await send(b, room, "see this, carol", mentions=[carol.id])
    await ok(a, "EditMessage", message_id=sent[1], content="edited once")
    await ok(a, "EditMessage", message_id=sent[1], content="edited twice")
    await ok(b, "DeleteMessage", message_id=sent[3])
    await ok(b, "AddReaction", message_id=sent[1], emoji="👍")
    await ok(a, "AddReaction", message_id=sent[1], emoji="👍")
    await ok(a, "AddReaction", message_id=sent[0], emoji="🎉")
    await ok(a, "RemoveReaction", message_id=sent[0], emoji="🎉")
    await ok(b, "MarkAsDelivered", conversation_id=room, message_id=sent[5])
    await ok(b, "MarkAsRead", conversation_id=room, message_id=sent[4])

    direct = (await server.create_conversation(alice, kind="direct", members=[dave]))["id"]
    d = await joined(server, dave, direct)
    await send(d, direct, "hi alice")
    await ok(a, "JoinConversation", conversation_id=direct)
    for answered in (True, False):
        call_id = str(uuid.uuid4())
        await ok(a, "CallOffer", conversation_id=direct, call_id=call_id, sdp=OFFER_SDP,
                 call_type="audio")
        await d.expect("CallOffer", TIMEOUT, call_id=call_id)
        if answered:
            await ok(d, "CallAnswer", call_id=call_id, sdp=ANSWER_SDP)
            await ok(a, "CallHangup", call_id=call_id, reason="bye")
        else:
            await ok(d, "CallReject", call_id=call_id, reason="busy")
    backend = ServerApi(server)  # a profile, a keyed create, a system message
    assert (await backend.put_user(carol.id, name="carol", avatar_url="https://a.example/c",
                                   metadata={"team": "ops"})).status_code == 200
    ops = await backend.create("copy-1", kind="group", name="ops", owner_id=alice.id,
                               member_ids=[carol.id])
    assert ops.status_code == 201, ops.text
    assert (await backend.post(room, content="system note")).status_code == 201
    world.conversations = [room, direct, ops.json()["id"]]
    return world


async def snapshot(server: RunningServer, world: World) -> dict[str, Any]:
    """Everything each user sees through the API: conversation lists with unread counts,
    members, whole histories (REST), every change from version 0 (`SyncMessages`), call
    history. Presence (`online`) is not stored data, and left out."""
    seen: dict[str, Any] = {}
    for user in world.users:
        async with server.http(user) as http:
            listed = (await http.get("/api/v1/conversations")).json()["conversations"]
            seen[f"{user.name} conversations"] = sorted(listed, key=lambda c: c["id"])
            for room in world.conversations:
                members = await http.get(f"/api/v1/conversations/{room}/members")
                calls = await http.get(f"/api/v1/conversations/{room}/calls")
                seen[f"{user.name} {room} members"] = (
                    members.status_code,
                    sorted(({k: v for k, v in m.items() if k != "online"}
                            for m in members.json().get("members", [])),
                           key=lambda m: m["user_id"]))
                seen[f"{user.name} {room} calls"] = (calls.status_code, calls.json())
    client = await server.connect(world.users[0])
    for room in world.conversations:
        history = await rest_messages(server, world.users[0], room)
        seen[f"{room} history"] = [normalised(m) for m in history]
        changes = await client.request("SyncMessages", conversation_id=room,
                                       since_version=0, limit=500, timeout=TIMEOUT)
        assert changes["type"] == "SyncChunk", changes
        assert changes["has_more"] is False
        changes["messages"] = [normalised(m) for m in changes["messages"]]
        seen[f"{room} sync"] = {k: v for k, v in changes.items() if k != "request_id"}
    await client.close()
    return seen


async def rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted: what two databases must agree on to the column."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return {table.name: sorted(tuple(row) for row in await conn.execute(
                select(table))) for table in metadata.sorted_tables}
    finally:
        await engine.dispose()


@pytest_asyncio.fixture(loop_scope="session")
async def target() -> AsyncIterator[PostgresDatabase]:
    async with postgres_database() as database:
        yield database


async def test_a_copy_to_postgresql_and_back_serves_the_same_conversations(
        tmp_path: Path, target: PostgresDatabase) -> None:
    """SQLite → PostgreSQL → SQLite: each copy holds the same rows as its source, to the
    column, and its server shows what the original showed."""
    secret = secrets.token_urlsafe(32)
    original = f"sqlite:///{tmp_path / 'original.db'}"
    back = f"sqlite:///{tmp_path / 'back.db'}"
    async with run_server(settings(original, secret, **OUTBOX)) as server:
        world = await traffic(server)
        await server.close_clients()
        before = await snapshot(server, world)

    status, out, err = await copy_db("--from", original, "--to", target.url,
                                     "--batch-size", str(SMALL_BATCH))
    assert (status, err) == (0, ""), err
    lines = out.splitlines()
    assert lines[0] == f"copied {original} to {target.url}"
    assert lines[-1].startswith("verified: every table's row count; for 3 conversations"), out
    copied = await rows(target.url)
    # The traffic made rows in every table.
    assert all(copied.values()), {name: len(found) for name, found in copied.items()}
    assert copied == await rows(original)
    async with run_server(settings(target.url, secret)) as server:
        assert await snapshot(server, world) == before

    status, out, err = await copy_db("--from", target.url, "--to", back)
    assert (status, err) == (0, ""), err
    assert await rows(back) == await rows(target.url)  # connecting changed a `last_seen`
    async with run_server(settings(back, secret)) as server:
        assert await snapshot(server, world) == before


async def test_a_copy_taken_while_a_server_writes_is_one_snapshot(tmp_path: Path) -> None:
    """A server sends all along, and the copy, a row at a time, passes its check: it is the
    source as it was at one moment (fewer messages than the source has by the end)."""
    source, copy = (f"sqlite:///{tmp_path / name}" for name in ("live.db", "copy.db"))
    async with run_server(settings(source, secrets.token_urlsafe(32))) as server:
        alice = server.user("alice")
        room = (await server.create_conversation(alice, name="busy"))["id"]
        client = await joined(server, alice, room)
        await send(client, room, "before the copy")
        copying = asyncio.create_task(copy_db("--from", source, "--to", copy,
                                              "--batch-size", "1"))
        sent = 1
        while not copying.done():
            await send(client, room, f"during the copy {sent}")
            sent += 1
        status, _, err = await copying
    assert (status, err) == (0, ""), err
    copied = len((await rows(copy))["messages"])
    assert 0 < copied < sent == len((await rows(source))["messages"])


async def test_a_non_empty_target_is_refused_unless_forced(
        tmp_path: Path, target: PostgresDatabase) -> None:
    """A target with any row is left alone (status 2, one line); `--force` replaces its
    rows with the source's, none of its own kept."""
    secret = secrets.token_urlsafe(32)
    first, second = (f"sqlite:///{tmp_path / name}" for name in ("first.db", "second.db"))
    for url in (first, second):
        async with run_server(settings(url, secret)) as server:
            await traffic(server)
    assert (await copy_db("--from", first, "--to", target.url))[0] == 0
    kept = await rows(target.url)

    status, out, err = await copy_db("--from", second, "--to", target.url)
    assert (status, out) == (2, "")
    assert err.count("\n") == 1, err
    assert err.startswith("hubbub: copy-db: the target postgresql://"), err
    assert "is not empty" in err, err
    assert "--force" in err, err
    assert await rows(target.url) == kept

    status, out, err = await copy_db("--from", second, "--to", target.url, "--force")
    assert (status, err) == (0, ""), err
    assert await rows(target.url) == await rows(second)


async def test_a_missing_source_is_refused(tmp_path: Path) -> None:
    """No file (none is made), no database, no hubbub schema: one line each, status 2."""
    missing = tmp_path / "missing.db"
    status, out, err = await copy_db("--from", f"sqlite:///{missing}",
                                     "--to", f"sqlite:///{tmp_path / 'target.db'}")
    assert (status, out) == (2, "")
    assert err == f"hubbub: copy-db: the source sqlite:///{missing} does not exist\n"
    assert os.listdir(tmp_path) == []

    async with postgres_database() as database:
        absent = database.url.rsplit("/", 1)[0] + "/hubbub_test_absent_" + uuid.uuid4().hex[:8]
        status, _, err = await copy_db("--from", absent, "--to", database.url)
        assert status == 2
        assert err.startswith(f"hubbub: copy-db: cannot open the source {absent}: "), err
        assert "does not exist" in err, err

        status, _, err = await copy_db("--from", database.url,
                                       "--to", f"sqlite:///{tmp_path / 'target.db'}")
        assert status == 2
        assert err == (f"hubbub: copy-db: the source {database.url} holds no hubbub "
                       "database (no alembic_version table)\n")


async def test_the_check_names_every_difference(tmp_path: Path) -> None:
    """`verify` (the check a copy must pass before it commits) compares row counts and
    each conversation's versions and message counts, and names what differs."""
    secret = secrets.token_urlsafe(32)
    source, copy = (f"sqlite:///{tmp_path / name}" for name in ("source.db", "copy.db"))
    async with run_server(settings(source, secret)) as server:
        world = await traffic(server)
    assert (await copy_db("--from", source, "--to", copy))[0] == 0
    engines = [create_engine(url) for url in (source, copy)]
    try:
        async with engines[0].connect() as src, engines[1].connect() as dst:
            assert await verify(src, dst) == len(world.conversations)
            await dst.execute(users.delete().where(users.c.name == "carol"))
            await dst.exec_driver_sql("UPDATE conversations SET version = version + 1")
            with pytest.raises(Mismatch) as caught:
                await verify(src, dst)
    finally:
        for engine in engines:
            await engine.dispose()
    differences = caught.value.differences
    assert differences[0] == "users: 4 rows in the source, 3 in the target"
    assert len(differences) == 1 + len(world.conversations), differences
    assert all(line.startswith("conversation ") for line in differences[1:]), differences
