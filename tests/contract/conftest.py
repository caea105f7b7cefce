"""Contract tests: written once, run against every implementation of a seam."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.conftest import Backend
from tests.support.services import create_postgres_database, drop_postgres_database
from tests.support.stores import SqlStores, open_stores


@pytest_asyncio.fixture(loop_scope="session")
async def store(backend: Backend) -> AsyncIterator[SqlStores]:
    """The store of the backend under test, schema up to date."""
    opened = await open_stores(backend.database_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest_asyncio.fixture(loop_scope="session")
async def two_instances() -> AsyncIterator[tuple[SqlStores, SqlStores]]:
    """Two stores on one fresh PostgreSQL database, as two instances would have: two
    writers, whose transactions only the database's locks order."""
    database = await create_postgres_database()
    first = await open_stores(database.url)
    second = await open_stores(database.url)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()
        await drop_postgres_database(database)
