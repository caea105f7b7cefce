"""The SQL adapter behind the storage seam: SQLite and PostgreSQL, chosen by URL scheme."""

from __future__ import annotations

from hubbub.adapters.sql.engine import create_engine, create_search_engine
from hubbub.adapters.sql.migrate import upgrade
from hubbub.adapters.sql.search_budget import DEFAULT_SEARCH, SearchLimits
from hubbub.adapters.sql.sql import SqlStore

__all__ = ["SearchLimits", "open_store", "upgrade"]


async def open_store(url: str, *, migrate: bool = True,
                     search: SearchLimits = DEFAULT_SEARCH) -> SqlStore:
    """Open the store for `url`, bringing its schema up to date first unless told not to."""
    engine, dialect = create_engine(url)
    if migrate:
        await upgrade(engine, dialect)
    return SqlStore(engine, dialect, search_engine=create_search_engine(url, search),
                    search=search)
