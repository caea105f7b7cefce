"""Fixtures: a real server per backend, real clients, and the machine's real services.

`backend` runs every test that asks for `server` (or `start_server`) once on SQLite with the
in-memory bus and once on PostgreSQL with Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from hubbub.config import Settings
from tests.support.server import RunningServer, run_server
from tests.support.services import (
    REDIS_URL,
    check_redis,
    create_postgres_database,
    drop_postgres_database,
)


@dataclass
class Backend:
    name: str
    database_url: str
    redis_url: str | None = None
    redis_prefix: str = "hubbub"

    def settings(self, **overrides: Any) -> Settings:
        base: dict[str, Any] = {"database_url": self.database_url, "redis_url": self.redis_url,
                                "redis_prefix": self.redis_prefix, "log_format": "text"}
        base.update(overrides)
        return Settings(**base)


BACKENDS = ["sqlite", "postgres"]


@pytest_asyncio.fixture(scope="session", params=BACKENDS, loop_scope="session")
async def backend(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("sqlite") / "hubbub.db"
        yield Backend("sqlite", f"sqlite:///{path}")
        return
    database = await create_postgres_database()
    prefix = await check_redis()
    try:
        yield Backend("postgres", database.url, REDIS_URL, prefix)
    finally:
        await drop_postgres_database(database)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def server(backend: Backend) -> AsyncIterator[RunningServer]:
    """One server per backend, shared by the tests (each test makes its own users)."""
    async with run_server(backend.settings(rate_limits=False)) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session", autouse=True)
async def _close_clients(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    yield
    if "server" in request.fixturenames:
        running: RunningServer = request.getfixturevalue("server")
        await running.close_clients()


StartServer = Callable[..., AbstractAsyncContextManager[RunningServer]]


@pytest.fixture
def start_server(backend: Backend) -> StartServer:
    """A server of its own with settings overridden, for tests of limits and lifecycles."""

    def start(**overrides: Any) -> AbstractAsyncContextManager[RunningServer]:
        return run_server(backend.settings(**overrides))

    return start
