"""Fixtures the end-to-end tests of several modules share: a private redis-server a test
may kill, and the server API's keyed server per backend (test_server_api*.py) with the
backend's client of it, and the verifying webhook receiver (test_webhooks*.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from tests.conftest import Backend
from tests.support.redis_server import RedisProcess
from tests.support.server import RunningServer
from tests.support.server_api import ServerApi, api_instance
from tests.support.webhook_receiver import WebhookReceiver, new_secret

# One key for every webhook receiver: on PostgreSQL the tests share a database, and an
# event a failed test left behind is verified like any other (each test looks at its own
# conversations).
WEBHOOK_SECRET = new_secret()


@pytest_asyncio.fixture(loop_scope="session")
async def redis(tmp_path: Path) -> AsyncIterator[RedisProcess]:
    """A private redis-server this test may kill."""
    process = RedisProcess(tmp_path)
    await process.start()
    try:
        yield process
    finally:
        await process.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def api_server(backend: Backend) -> AsyncIterator[RunningServer]:
    """One server per backend with both API keys (as while rotating)."""
    async with api_instance(backend) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def api(api_server: RunningServer) -> AsyncIterator[ServerApi[RunningServer]]:
    """The backend's client; the test's WebSocket connections close after it."""
    yield ServerApi(api_server)
    await api_server.close_clients()


@pytest_asyncio.fixture(loop_scope="session")
async def receiver() -> AsyncIterator[WebhookReceiver]:
    """A webhook receiver that verifies every request (tests/support/webhook_receiver.py)."""
    receiver = WebhookReceiver(secret=WEBHOOK_SECRET)
    await receiver.up()
    try:
        yield receiver
    finally:
        await receiver.down()
