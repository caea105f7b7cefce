"""One schema for both databases: the Alembic migrations build exactly the tables of
adapters/sql/schema.py on SQLite and on PostgreSQL, and `hubbub migrate` runs on each."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hubbub.adapters.sql.dialect import Dialect, dialect_for
from hubbub.adapters.sql.migrate import upgrade
from hubbub.adapters.sql.schema import conversations, members, metadata
from hubbub.adapters.sql.search import SqlSearchStore
from hubbub.adapters.sql.search_budget import DEFAULT_SEARCH
from hubbub.adapters.sql.shared import load_messages
from tests.support.cluster import postgres_database

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(params=["sqlite", "postgres"], loop_scope="session")
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'schema.db'}"
        return
    async with postgres_database() as database:
        yield database.url


def create_engine(url: str) -> tuple[AsyncEngine, Dialect]:
    """The main engine of the database at `url` (its search pool is never used)."""
    driver_url, dialect = dialect_for(url)
    engine, _ = dialect.create_engines(driver_url, DEFAULT_SEARCH)
    return engine, dialect


# Made by the migrations on one database only, on purpose, so schema.py does not declare
# them: PostgreSQL's pg_trgm index and tsvector column and its GIN index (0002, 0009),
# SQLite's FTS5 table and its shadow tables (0009).
POSTGRES_ONLY = {"ix_messages_content_trgm", "ix_messages_content_tsv", "content_tsv"}
SQLITE_FTS = "messages_fts"


def _declared(obj: Any, name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
    if not reflected or name is None:
        return True
    if kind in ("index", "column") and name in POSTGRES_ONLY:
        return False
    return not (kind == "table" and name.startswith(SQLITE_FTS))


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_object": _declared})
    return list(compare_metadata(context, metadata))


async def test_migrations_build_the_declared_schema(database_url: str) -> None:
    """After upgrading, Alembic finds nothing between the database and schema.py."""
    engine, dialect = create_engine(database_url)
    try:
        await upgrade(engine, dialect)
        async with engine.connect() as conn:
            differences = await conn.run_sync(_differences)
    finally:
        await engine.dispose()
    assert differences == []


async def test_hubbub_migrate_runs_and_can_run_again(database_url: str,
                                                     tmp_path: Path) -> None:
    """`hubbub migrate` brings an empty database up to date, and a second run changes
    nothing."""
    env = {**os.environ, "HUBBUB_DATABASE_URL": database_url, "HUBBUB_LOG_LEVEL": "warning"}
    for _ in range(2):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hubbub", "migrate", cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        assert process.returncode == 0, output.decode(errors="replace")


async def test_0005_accepts_existing_memberships_and_makes_direct_peers(
        database_url: str) -> None:
    """Memberships made before 0005 count as accepted (from their `joined_at`), and the
    creator of a direct conversation, its owner until then, becomes a `member`; groups keep
    their owners."""
    engine, dialect = create_engine(database_url)
    try:
        await upgrade(engine, dialect, "0004")
        async with engine.begin() as conn:
            for conversation, kind, name in (("d", "direct", None), ("g", "group", "g")):
                await conn.execute(conversations.insert().values(
                    id=conversation, kind=kind, name=name, created_by="alice", version=0,
                    created_at=1, last_activity_at=1,
                    direct_key="alice:bob" if kind == "direct" else None))
                await conn.execute(text(
                    "INSERT INTO members (conversation_id, user_id, role, joined_at) "
                    "VALUES (:c, 'alice', 'owner', 10), (:c, 'bob', 'member', 20)"),
                    {"c": conversation})
        await upgrade(engine, dialect)
        async with engine.connect() as conn:
            rows = (await conn.execute(
                select(members.c.conversation_id, members.c.user_id, members.c.role,
                       members.c.accepted_at)
                .order_by(members.c.conversation_id, members.c.user_id))).all()
    finally:
        await engine.dispose()
    assert [tuple(row) for row in rows] == [
        ("d", "alice", "member", 10), ("d", "bob", "member", 20),
        ("g", "alice", "owner", 10), ("g", "bob", "member", 20),
    ]


async def test_0007_widens_user_ids_and_rekeys_direct_pairs(database_url: str) -> None:
    """After 0007 a 128-character user id fits every user id column, and a direct
    conversation made before it keeps its pair: its key is the new one, so opening the
    pair again finds it rather than making a second."""
    from hubbub.adapters.sql.conversations import direct_key
    from hubbub.adapters.sql.schema import users

    alice, bob = "0a0a0a0a-0000-4000-8000-000000000001", "0b0b0b0b-0000-4000-8000-000000000002"
    engine, dialect = create_engine(database_url)
    try:
        await upgrade(engine, dialect, "0006")
        async with engine.begin() as conn:
            await conn.execute(conversations.insert().values(
                id="d", kind="direct", name=None, created_by=alice, version=0,
                created_at=1, last_activity_at=1, direct_key=f"{alice}:{bob}"))
        await upgrade(engine, dialect)
        long_id = "auth0|" + "x" * 122
        async with engine.begin() as conn:
            await conn.execute(users.insert().values(id=long_id, name="long", created_at=1))
            await conn.execute(members.insert().values(
                conversation_id="d", user_id=long_id, role="member", joined_at=1))
            key = (await conn.execute(select(conversations.c.direct_key))).scalar_one()
            stored = (await conn.execute(select(users.c.id))).scalar_one()
    finally:
        await engine.dispose()
    assert key == direct_key(bob, alice)
    assert len(key) == 64
    assert stored == long_id


async def test_0007_downgrades_back_to_the_old_pair_keys(database_url: str) -> None:
    """Down from 0007 the key is "low-uuid:high-uuid" again, rebuilt from the members."""
    from alembic import command

    from hubbub.adapters.sql.migrate import _config

    alice, bob = "0a0a0a0a-0000-4000-8000-000000000001", "0b0b0b0b-0000-4000-8000-000000000002"
    engine, dialect = create_engine(database_url)
    try:
        await upgrade(engine, dialect)
        async with engine.begin() as conn:
            await conn.execute(conversations.insert().values(
                id="d", kind="direct", name=None, created_by=bob, version=0, created_at=1,
                last_activity_at=1, direct_key="rewritten below"))
            await conn.execute(members.insert(), [
                {"conversation_id": "d", "user_id": uid, "role": "member", "joined_at": 1}
                for uid in (bob, alice)])
            await conn.run_sync(lambda sync: command.downgrade(_config(sync), "0006"))
            key = (await conn.execute(select(conversations.c.direct_key))).scalar_one()
    finally:
        await engine.dispose()
    assert key == f"{alice}:{bob}"


async def _alice_and_her_group(conn: AsyncConnection, version: int) -> None:
    """User `alice` and group `g` of hers at `version`, written as an old schema has them."""
    await conn.execute(text("INSERT INTO users (id, name, created_at) "
                            "VALUES ('alice', 'alice', 1)"))
    await conn.execute(conversations.insert().values(
        id="g", kind="group", name="g", created_by="alice", version=version,
        created_at=1, last_activity_at=version))


async def test_0009_indexes_the_existing_live_messages(database_url: str) -> None:
    """The full-text index is filled with the messages stored before it: a words search
    finds the live ones at once, never a deleted one."""
    engine, dialect = create_engine(database_url)
    try:
        await upgrade(engine, dialect, "0006")
        async with engine.begin() as conn:
            await _alice_and_her_group(conn, version=3)
            await conn.execute(text(
                "INSERT INTO members (conversation_id, user_id, role, joined_at) "
                "VALUES ('g', 'alice', 'owner', 1)"))
            for seq, content, deleted_at in ((1, "Grüße aus Köln", None),
                                             (2, "grüße again", 5),
                                             (3, "nothing here", None)):
                await conn.execute(text(
                    "INSERT INTO messages (id, conversation_id, seq, version, sender_id, "
                    "content, created_at, deleted_at) "
                    "VALUES (:id, 'g', :seq, :seq, 'alice', :content, :seq, :deleted)"),
                    {"id": f"m{seq}", "seq": seq, "content": content, "deleted": deleted_at})
        await upgrade(engine, dialect)
        store = SqlSearchStore(engine, dialect)
        found = await store.search("alice", "again", None, 10, mode="words")
        assert ([m.id for m in found.messages], found.truncated) == ([], False)
        found = await store.search("alice", "grüße", None, 10, mode="words")
        assert ([m.id for m in found.messages], found.mode) == (["m1"], "words")
        assert [m.id for m in (await store.search("alice", "köln", "g", 10,
                                                  mode="words")).messages] == ["m1"]
    finally:
        await engine.dispose()


async def test_0011_counts_existing_threads_and_keeps_members(database_url: str) -> None:
    """Threads stored before 0011 get their live replies counted (a deleted reply does
    not count) and the latest one's time; memberships become unmuted and unpinned with
    their read marks kept; messages have no mentions."""
    engine, dialect = create_engine(database_url)
    try:
        await upgrade(engine, dialect, "0010")
        async with engine.begin() as conn:
            await _alice_and_her_group(conn, version=4)
            await conn.execute(text(
                "INSERT INTO members (conversation_id, user_id, role, joined_at, "
                "last_read_seq) VALUES ('g', 'alice', 'owner', 1, 2)"))
            for seq, parent, deleted_at in ((1, None, None), (2, "m1", None),
                                            (3, "m1", None), (4, "m1", 9)):
                await conn.execute(text(
                    "INSERT INTO messages (id, conversation_id, seq, version, sender_id, "
                    "content, parent_id, created_at, deleted_at) "
                    "VALUES (:id, 'g', :seq, :seq, 'alice', 'x', :parent, :at, :deleted)"),
                    {"id": f"m{seq}", "seq": seq, "parent": parent, "at": seq * 10,
                     "deleted": deleted_at})
        await upgrade(engine, dialect)
        async with engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT id, reply_count, last_reply_at, version, mentions FROM messages "
                "ORDER BY seq"))).all()
            member = (await conn.execute(select(
                members.c.last_read_seq, members.c.muted, members.c.pinned))).one()
        assert [tuple(row) for row in rows] == [
            ("m1", 2, 30, 1, None), ("m2", 0, None, 2, None), ("m3", 0, None, 3, None),
            ("m4", 0, None, 4, None)]
        assert (member.last_read_seq, bool(member.muted), bool(member.pinned)) == (
            2, False, False)
    finally:
        await engine.dispose()


async def test_0013_stamps_messages_whose_reactions_predate_reacted_at(
        database_url: str) -> None:
    """A reaction stored without its message's `reacted_at` (before 0002) is still read
    with its message after 0013; messages without reactions stay unstamped."""
    engine, dialect = create_engine(database_url)
    try:
        await upgrade(engine, dialect, "0012")
        async with engine.begin() as conn:
            await _alice_and_her_group(conn, version=3)
            for seq, reacted_at in ((1, None), (2, None), (3, 70)):
                await conn.execute(text(
                    "INSERT INTO messages (id, conversation_id, seq, version, sender_id, "
                    "content, created_at, reacted_at) "
                    "VALUES (:id, 'g', :seq, :seq, 'alice', 'x', :seq, :reacted)"),
                    {"id": f"m{seq}", "seq": seq, "reacted": reacted_at})
            for message_id, emoji, at in (("m1", "👍", 40), ("m1", "🎉", 50), ("m3", "👍", 60)):
                await conn.execute(text(
                    "INSERT INTO reactions (message_id, user_id, emoji, created_at) "
                    "VALUES (:m, 'alice', :e, :at)"), {"m": message_id, "e": emoji, "at": at})
        await upgrade(engine, dialect)
        async with engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT id, reacted_at FROM messages ORDER BY seq"))).all()
            page = await load_messages(conn, ["m1", "m2", "m3"])
        assert [tuple(row) for row in rows] == [("m1", 50), ("m2", None), ("m3", 70)]
        reactions_of = {m.id: sorted(r.emoji for r in m.reactions) for m in page}
        assert reactions_of == {"m1": ["🎉", "👍"], "m2": [], "m3": ["👍"]}
    finally:
        await engine.dispose()
