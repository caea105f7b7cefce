"""Contract tests: written once, run against every implementation of a seam."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from hubbub.adapters.sql import open_store
from hubbub.adapters.sql.sql import SqlStore
from tests.conftest import Backend
from tests.support.services import create_postgres_database, drop_postgres_database


@pytest_asyncio.fixture(loop_scope="session")
async def store(backend: Backend) -> AsyncIterator[SqlStore]:
    """The store of the backend under test, schema up to date."""
    opened = await open_store(backend.database_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest_asyncio.fixture(loop_scope="session")
async def two_instances() -> AsyncIterator[tuple[SqlStore, SqlStore]]:
    """Two stores on one fresh PostgreSQL database, as two instances would have: two
    writers, whose transactions only the database's locks order."""
    database = await create_postgres_database()
    first = await open_store(database.url)
    second = await open_store(database.url)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()
        await drop_postgres_database(database)
