"""The machine's PostgreSQL and Redis for tests: a fresh database and key prefix per run.

Outside CI a missing service skips the runs that need it, loudly; with CI=true it fails.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import pytest

POSTGRES_URL = os.environ.get("HUBBUB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("HUBBUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(what: str, exc: BaseException) -> None:
    """Fail in CI, skip elsewhere — never silently."""
    message = f"{what} unavailable ({type(exc).__name__}: {exc})"
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it")
    pytest.skip(f"{message}; these tests need it (unavailable here, outside CI)")


@dataclass
class PostgresDatabase:
    """A database made for this test run, dropped afterwards."""

    admin_url: str
    name: str

    @property
    def url(self) -> str:
        base = self.admin_url.rsplit("/", 1)[0]
        return f"{base}/{self.name}"


async def create_postgres_database() -> PostgresDatabase:
    import asyncpg

    name = f"hubbub_test_{uuid.uuid4().hex[:12]}"
    try:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        unavailable("PostgreSQL", exc)
        raise
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return PostgresDatabase(POSTGRES_URL, name)


async def drop_postgres_database(database: PostgresDatabase) -> None:
    import asyncpg

    conn = await asyncpg.connect(database.admin_url, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')
    finally:
        await conn.close()


async def check_redis() -> str:
    """A unique key prefix on the machine's Redis (fails or skips when it does not answer)."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (OSError, aioredis.RedisError) as exc:
        unavailable("Redis", exc)
    finally:
        await client.aclose()
    return f"hubbub-test-{uuid.uuid4().hex[:12]}"
