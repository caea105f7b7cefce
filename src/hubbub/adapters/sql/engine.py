"""The engines of each database: the main pool, the searches' own pool, and SQLite's pragmas.

The search pool (search_budget.py) has `search.concurrency` connections, the gate's slots,
so a search never waits in it and never takes another read's connection. It is read-only.
On PostgreSQL every statement in it is bounded by the search timeout (the scan sets a
shorter one for each of its statements), and planned for its own values: a generic plan,
made for an average conversation, could sort a huge one whole instead of reading it by
index up to the chunk's LIMIT.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hubbub.adapters.sql.matching import register_sqlite_functions
from hubbub.adapters.sql.search_budget import SearchLimits

# A failed statement's exception (and so its logged traceback) leaves out the parameters:
# they hold message content.
_HIDE_PARAMETERS = {"hide_parameters": True}


def sqlite_engine(driver_url: str) -> AsyncEngine:
    """SQLite's main pool: small (one writer; WAL readers), the file's directory made first."""
    path = driver_url.split("///", 1)[1] if "///" in driver_url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    main = create_async_engine(driver_url, pool_size=4, max_overflow=0, **_HIDE_PARAMETERS)
    _on_sqlite_connect(main)
    return main


def sqlite_engines(driver_url: str, search: SearchLimits) -> tuple[AsyncEngine, AsyncEngine]:
    """SQLite: the main pool and the read-only pool of the searches."""
    main = sqlite_engine(driver_url)
    searches = create_async_engine(driver_url, pool_size=search.concurrency, max_overflow=0)
    _on_sqlite_connect(searches)
    event.listen(searches.sync_engine, "connect", _sqlite_query_only)
    return main, searches


def _on_sqlite_connect(engine: AsyncEngine) -> None:
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    event.listen(engine.sync_engine, "connect", register_sqlite_functions)


def postgres_engine(driver_url: str) -> AsyncEngine:
    """PostgreSQL's main pool, for requests and the writer."""
    return create_async_engine(driver_url, pool_size=10, max_overflow=10, pool_pre_ping=False,
                               **_HIDE_PARAMETERS)


def postgres_engines(driver_url: str, search: SearchLimits
                     ) -> tuple[AsyncEngine, AsyncEngine]:
    """PostgreSQL: a pool for requests and the writer, and the bounded search pool."""
    main = postgres_engine(driver_url)
    timeout_ms = max(1, int(search.timeout_s * 1000))
    searches = create_async_engine(
        driver_url, pool_size=search.concurrency, max_overflow=0, pool_pre_ping=False,
        connect_args={"server_settings": {"statement_timeout": str(timeout_ms),
                                          "default_transaction_read_only": "on",
                                          "plan_cache_mode": "force_custom_plan"}})
    return main, searches


def _sqlite_query_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL: readers never block the writer. synchronous=NORMAL: a commit survives a crash of
    # the process (SIGKILL), not a power cut — the usual trade for chat on one machine.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
