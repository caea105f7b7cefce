"""What differs between SQLite and PostgreSQL, kept in one small object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str

    def insert(self, table: Table) -> Any:
        """An INSERT that supports ON CONFLICT on this database."""
        if self.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)


def engine_url(url: str) -> tuple[str, Dialect]:
    """Map a user-facing URL (`sqlite:///file.db`, `postgresql://…`) to an async driver URL."""
    if url.startswith("sqlite"):
        rest = url.split(":", 1)[1]
        return "sqlite+aiosqlite:" + rest, Dialect("sqlite")
    if url.startswith(("postgresql", "postgres")):
        rest = url.split("://", 1)[1]
        return "postgresql+asyncpg://" + rest, Dialect("postgresql")
    raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]!r}")
