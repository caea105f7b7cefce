"""Fixtures the end-to-end tests of several modules share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from tests.support.redis_server import RedisProcess


@pytest_asyncio.fixture(loop_scope="session")
async def redis(tmp_path: Path) -> AsyncIterator[RedisProcess]:
    """A private redis-server this test may kill."""
    process = RedisProcess(tmp_path)
    await process.start()
    try:
        yield process
    finally:
        await process.stop()
