"""Schema migrations with Alembic, run programmatically on the async engine."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from hubbub.adapters.sql.dialect import Dialect

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, dialect: Dialect, revision: str = "head") -> None:
    """Bring the schema to the newest revision (or to `revision`, for tests of a migration's
    data); safe when several instances start at once."""
    async with engine.begin() as conn:
        await dialect.lock_migrations(conn)
        await conn.run_sync(lambda sync: command.upgrade(_config(sync), revision))
