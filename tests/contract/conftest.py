"""Contract tests: written once, run against every implementation of a seam."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from hubbub.storage import open_store
from hubbub.storage.sql import SqlStore
from tests.conftest import Backend


@pytest_asyncio.fixture(loop_scope="session")
async def store(backend: Backend) -> AsyncIterator[SqlStore]:
    """The store of the backend under test, schema up to date."""
    opened = await open_store(backend.database_url)
    try:
        yield opened
    finally:
        await opened.close()
