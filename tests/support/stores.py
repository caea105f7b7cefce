"""The SQL stores as tests use them: every noun's methods on one object, and a database
opened beside a running server, as another instance of the deployment would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import fields
from typing import Any

from hubbub.adapters.sql import SqlDatabase, open_sql_database
from hubbub.storage import CallStore, Stores


class AnyStore:
    """The public methods of every store of a `Stores` on one object (`store.send(…)` is
    the message store's), for tests that act on several nouns at once. No method name is
    shared by two nouns, so nothing is hidden."""

    def __init__(self, stores: Stores) -> None:
        for field in fields(stores):
            noun = getattr(stores, field.name)
            for name in dir(type(noun)):
                if name.startswith("_"):
                    continue
                assert not hasattr(self, name), f"{name} is in two stores"
                setattr(self, name, getattr(noun, name))

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"no store has {name!r}")


class SqlStores(AnyStore):
    """An `AnyStore` on a SQL database, with the database's parts (writer, engines)."""

    def __init__(self, database: SqlDatabase) -> None:
        super().__init__(database.stores)
        self.database = database
        self.stores = database.stores
        self.writer = database.writer
        self.engine = database.engine
        self.dialect = database.dialect
        self.search_engine = database.search_engine

    async def close(self) -> None:
        await self.database.close()


async def open_stores(url: str, *, migrate: bool = True) -> SqlStores:
    return SqlStores(await open_sql_database(url, migrate=migrate))


@asynccontextmanager
async def another_instance(backend: Any) -> AsyncIterator[CallStore]:
    """The call store as another instance of the deployment writes it (`backend`: a
    tests.conftest.Backend)."""
    database = await open_sql_database(backend.database_url, migrate=False)
    try:
        yield database.stores.calls
    finally:
        await database.close()


async def stored_keys(database_url: str, room: str) -> dict[str, str]:
    """client_message_id → message id of everything stored in the room, read directly."""
    database = await open_sql_database(database_url, migrate=False)
    try:
        found: dict[str, str] = {}
        before: int | None = None
        while True:
            page = await database.stores.messages.history(room, before, 100)
            for message in page.messages:
                assert message.client_message_id is not None
                found[message.client_message_id] = message.id
            if not page.has_more or not page.messages:
                return found
            before = page.messages[0].seq
    finally:
        await database.close()
