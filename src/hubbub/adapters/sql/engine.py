"""Engines for SQLite and PostgreSQL: pools, pragmas, the searches' own pool."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hubbub.adapters.sql.dialect import Dialect, engine_url
from hubbub.adapters.sql.matching import register_sqlite_functions
from hubbub.adapters.sql.search_budget import SearchLimits


def create_engine(url: str) -> tuple[AsyncEngine, Dialect]:
    """An async engine for a `sqlite:///…` or `postgresql://…` URL, tuned for the database."""
    driver_url, dialect = engine_url(url)
    # A failed statement's exception (and so its logged traceback) leaves out the
    # parameters: they hold message content.
    options: dict[str, Any] = {"hide_parameters": True}
    if dialect.name == "sqlite":
        path = driver_url.split("///", 1)[1] if "///" in driver_url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(driver_url, pool_size=4, max_overflow=0, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "connect", register_sqlite_functions)
    else:
        engine = create_async_engine(driver_url, pool_size=10, max_overflow=10,
                                     pool_pre_ping=False, **options)
    return engine, dialect


def create_search_engine(url: str, search: SearchLimits) -> AsyncEngine:
    """The searches' own pool (storage/search_budget.py): `search.concurrency` connections,
    the gate's slots, so a search never waits in it and never takes another read's
    connection. Read-only. On PostgreSQL every statement is bounded by the search timeout
    (the scan sets a shorter one for each of its statements), and planned for its own
    values: a generic plan, made for an average conversation, could sort a huge one whole
    instead of reading it by index up to the chunk's LIMIT."""
    driver_url, dialect = engine_url(url)
    if dialect.name == "sqlite":
        engine = create_async_engine(driver_url, pool_size=search.concurrency, max_overflow=0)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "connect", register_sqlite_functions)
        event.listen(engine.sync_engine, "connect", _sqlite_query_only)
        return engine
    timeout_ms = max(1, int(search.timeout_s * 1000))
    return create_async_engine(
        driver_url, pool_size=search.concurrency, max_overflow=0, pool_pre_ping=False,
        connect_args={"server_settings": {"statement_timeout": str(timeout_ms),
                                          "default_transaction_read_only": "on",
                                          "plan_cache_mode": "force_custom_plan"}})


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
