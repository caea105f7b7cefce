"""A real `hubbub serve` on a SQLite file of its own, with a JWT secret and an API key."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from tests.support.process import ServerProcess, serving

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "contract"
API_KEY = secrets.token_urlsafe(32)


@pytest_asyncio.fixture(loop_scope="session")
async def process(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    server = ServerProcess(database_url=f"sqlite:///{tmp_path / 'hubbub.db'}",
                           workdir=tmp_path, extra_env={"HUBBUB_API_KEYS": API_KEY})
    async with serving(server) as running:
        yield running
