"""Schema migrations with Alembic, run programmatically on the async engine."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from hubbub.adapters.sql.dialect import Dialect

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same for every hubbub instance.
_PG_MIGRATION_LOCK = 0x6875_6262


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, dialect: Dialect, revision: str = "head") -> None:
    """Bring the schema to the newest revision (or to `revision`, for tests of a migration's
    data); safe when several instances start at once."""
    async with engine.begin() as conn:
        if dialect.name == "postgresql":
            await conn.execute(text(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})"))
        await conn.run_sync(lambda sync: command.upgrade(_config(sync), revision))
