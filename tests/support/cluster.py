"""Several hubbub instances on one PostgreSQL and one Redis key prefix: a deployment in
miniature, every instance a real server on its own port (in the test's event loop).

Outside CI a missing PostgreSQL or Redis skips these tests loudly; with CI=true it fails.
"""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from hubbub.config import Settings
from tests.support.client import ChatClient
from tests.support.server import RunningServer, User, run_server
from tests.support.services import (
    REDIS_URL,
    PostgresDatabase,
    check_redis,
    create_postgres_database,
    drop_postgres_database,
)


@dataclass
class Cluster:
    """Instances that share a database, a Redis prefix and a JWT secret."""

    instances: list[RunningServer]
    database_url: str
    redis_url: str
    redis_prefix: str
    jwt_secret: str

    def __getitem__(self, index: int) -> RunningServer:
        return self.instances[index]

    def __len__(self) -> int:
        return len(self.instances)

    def user(self, name: str | None = None) -> User:
        """A new user with a token every instance accepts."""
        return self.instances[0].user(name)

    async def connect(self, index: int, user: User) -> ChatClient:
        """A connection of `user` to instance `index`."""
        return await self.instances[index].connect(user)

    async def close_clients(self) -> None:
        for instance in self.instances:
            await instance.close_clients()


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[PostgresDatabase]:
    """A fresh PostgreSQL database, dropped afterwards (skips or fails when absent)."""
    database = await create_postgres_database()
    try:
        yield database
    finally:
        await drop_postgres_database(database)


@contextlib.asynccontextmanager
async def run_cluster(database_url: str, size: int = 3, redis_url: str = REDIS_URL,
                      **overrides: Any) -> AsyncIterator[Cluster]:
    """Start `size` instances on one database and a fresh Redis prefix of their own."""
    if redis_url == REDIS_URL:
        prefix = await check_redis()
    else:
        prefix = f"hubbub-test-{uuid.uuid4().hex[:12]}"
    secret = secrets.token_urlsafe(32)
    settings = Settings(**{
        "database_url": database_url, "redis_url": redis_url, "redis_prefix": prefix,
        "jwt_secret": secret, "log_format": "text", **overrides,
    })
    async with contextlib.AsyncExitStack() as stack:
        instances = [await stack.enter_async_context(run_server(settings))
                     for _ in range(size)]
        yield Cluster(instances, database_url, redis_url, prefix, secret)


@contextlib.asynccontextmanager
async def deployment(database_url: str, size: int, **overrides: Any
                     ) -> AsyncIterator[list[RunningServer]]:
    """The instances of a deployment on this database, sharing one JWT secret: `size` on
    PostgreSQL (with a Redis prefix of their own; each instance has its own writer, so only
    the database's locks order their transactions), one on SQLite (a single process is the
    whole deployment there)."""
    if not database_url.startswith("postgresql"):
        settings = Settings(**{"database_url": database_url, "log_format": "text",
                               "jwt_secret": secrets.token_urlsafe(32), **overrides})
        async with run_server(settings) as single:
            yield [single]
        return
    async with run_cluster(database_url, size, **overrides) as cluster:
        yield cluster.instances
