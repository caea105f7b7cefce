"""Fixtures of the use-case tests: the services over one SQLite file (migrated once) and a
fresh memory bus, caches and timers per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from hubbub.adapters.sql import SqlDatabase, open_sql_database
from tests.support.usecases import UseCases, open_usecases


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def usecase_database(tmp_path_factory: pytest.TempPathFactory
                           ) -> AsyncIterator[SqlDatabase]:
    """One real SQLite database for every use-case test (each makes its own users)."""
    path = tmp_path_factory.mktemp("usecases") / "hubbub.db"
    database = await open_sql_database(f"sqlite:///{path}")
    try:
        yield database
    finally:
        await database.close()


@pytest_asyncio.fixture(loop_scope="session")
async def uc(usecase_database: SqlDatabase) -> AsyncIterator[UseCases]:
    """The services of one instance, as the composition root wires them."""
    built = await open_usecases(usecase_database)
    try:
        yield built
    finally:
        await built.close()
