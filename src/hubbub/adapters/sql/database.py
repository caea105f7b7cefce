"""One SQL database: its engines, its Writer, and one store per noun on them."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from hubbub.adapters.sql.calls import SqlCallStore
from hubbub.adapters.sql.conversations import SqlConversationStore
from hubbub.adapters.sql.dialect import Dialect, dialect_for
from hubbub.adapters.sql.idempotency import SqlIdempotencyStore
from hubbub.adapters.sql.members import SqlMemberStore
from hubbub.adapters.sql.messages import SqlMessageStore
from hubbub.adapters.sql.migrate import upgrade
from hubbub.adapters.sql.outbox import EventInserter, SqlOutboxStore
from hubbub.adapters.sql.reactions import SqlReactionStore
from hubbub.adapters.sql.receipts import SqlReceiptStore
from hubbub.adapters.sql.search import SqlSearchStore
from hubbub.adapters.sql.search_budget import DEFAULT_SEARCH, SearchLimits
from hubbub.adapters.sql.shared import SQL_ERRORS, unavailable
from hubbub.adapters.sql.undelivered import SqlUndeliveredStore
from hubbub.adapters.sql.unread import UNREAD_COUNT_CAP
from hubbub.adapters.sql.users import SqlUserStore
from hubbub.adapters.sql.writer import Writer
from hubbub.storage import Stores


class SqlDatabase:
    """The `Database` of the storage seam, and the `Stores` on it (`stores`). Every store
    writes through the one Writer, so all writes share the group commit."""

    def __init__(self, engine: AsyncEngine, dialect: Dialect, *,
                 search_engine: AsyncEngine | None = None,
                 search: SearchLimits = DEFAULT_SEARCH,
                 unread_count_cap: int = UNREAD_COUNT_CAP) -> None:
        self.engine = engine
        self.dialect = dialect
        # Searches have a pool of their own (engine.py); without one (tools, tests of
        # other parts) they share the main pool, still through the gate.
        self.search_engine = search_engine or engine
        inserter = EventInserter(dialect)
        self.writer = Writer(engine, dialect.conversation_locker, inserter)
        # Outgoing events: stored by the writer with their change, read by the dispatcher.
        self.outbox = SqlOutboxStore(engine, self.writer)
        messages = SqlMessageStore(engine, dialect, self.writer)
        # The checks `message.undelivered` owes, noted by the sends once it is on.
        self.undelivered = SqlUndeliveredStore(engine, self.writer, inserter,
                                               messages.send_batch)
        self.stores = Stores(
            users=SqlUserStore(engine, dialect, self.writer),
            conversations=SqlConversationStore(engine, dialect, self.writer,
                                               unread_count_cap=unread_count_cap),
            members=SqlMemberStore(engine, dialect, self.writer,
                                   unread_count_cap=unread_count_cap),
            messages=messages,
            reactions=SqlReactionStore(engine, self.writer),
            receipts=SqlReceiptStore(dialect, self.writer),
            search=SqlSearchStore(self.search_engine, dialect, search),
            calls=SqlCallStore(engine, dialect, self.writer),
            idempotency=SqlIdempotencyStore(dialect, self.writer),
        )

    async def ping(self) -> None:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except SQL_ERRORS as exc:
            raise unavailable(exc, "database unavailable") from exc

    async def close(self) -> None:
        await self.writer.close()
        await self.engine.dispose()
        if self.search_engine is not self.engine:
            await self.search_engine.dispose()


async def open_sql_database(url: str, *, migrate: bool = True,
                            search: SearchLimits = DEFAULT_SEARCH) -> SqlDatabase:
    """Open the database at `url` (`sqlite:///…`, `postgresql://…`), bringing its schema up
    to date first unless told not to."""
    driver_url, dialect = dialect_for(url)
    engine, search_engine = dialect.create_engines(driver_url, search)
    if migrate:
        await upgrade(engine, dialect)
    return SqlDatabase(engine, dialect, search_engine=search_engine, search=search)
