"""`SearchStore` on SQL: a slot from the gate, then the search on the search pool, bounded
by a deadline (search_budget.py): the `words` one on the full-text index (search_words.py),
or the `substring` scan (search_scan.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hubbub.adapters.sql import search_cursor
from hubbub.adapters.sql.dialect import Dialect
from hubbub.adapters.sql.schema import conversations, members, messages
from hubbub.adapters.sql.search_budget import (
    DEFAULT_SEARCH,
    Deadline,
    SearchGate,
    SearchLimits,
    run_abortable,
)
from hubbub.adapters.sql.search_scan import Cursor, scan
from hubbub.adapters.sql.search_words import (
    READABLE_ROLES,
    WordsCursor,
    find_words,
    parse_cursor,
    scope,
)
from hubbub.adapters.sql.shared import ReadConnection, message_select, with_reactions
from hubbub.domain.models import Message, SearchPage
from hubbub.storage.search import SearchMode, query_words

_SUBSTRING_CURSOR = "s"


class SqlSearchStore:
    def __init__(self, engine: AsyncEngine, dialect: Dialect,
                 search: SearchLimits = DEFAULT_SEARCH) -> None:
        """`engine`: the searches' own pool (engine.py); the main one for tools and tests
        of other parts, still through the gate."""
        self._engine = engine
        self._dialect = dialect
        self._search = search
        self._gate = SearchGate(search.concurrency)

    async def search(self, user_id: str, query: str, conversation_id: str | None,
                     limit: int, *, mode: SearchMode = "substring",
                     cursor: str | None = None) -> SearchPage:
        # A bad cursor is refused before it takes a slot.
        after_words = parse_cursor(cursor) if mode == "words" else None
        after_scan: Cursor | None = search_cursor.decode(_SUBSTRING_CURSOR, cursor, Cursor) \
            if mode == "substring" and cursor is not None else None
        # The slot is held until the work below has let go of its connection, even when
        # the caller is cancelled (run_abortable waits for it); its time starts now.
        async with self._gate.slot(user_id):
            deadline = self._dialect.new_deadline(self._search.timeout_s)
            if mode == "words":
                work = self._words_within(deadline, query, conversation_id, user_id, limit,
                                          after_words)
            else:
                work = self._search_within(deadline, query, conversation_id, user_id, limit,
                                           after_scan)
            return await run_abortable(work, deadline)

    async def _words_within(self, deadline: Deadline, query: str,
                            conversation_id: str | None, user_id: str, limit: int,
                            after: WordsCursor | None) -> SearchPage:
        """The words search on a connection of the search pool, once it has its slot."""
        async with ReadConnection(self._engine) as conn, _bounded(conn, deadline):
            within = scope(self._dialect, user_id, conversation_id)
            found = await find_words(conn, self._dialect, query_words(query), within,
                                     limit, after, self._search.rank_window, deadline)
            page = await _load_found(conn, found.ids, deadline)
        # Older matches beyond the rank window may be better ones (PROTOCOL.md §3).
        return SearchPage(page, not found.complete or found.windowed, mode="words",
                          next_cursor=found.next_cursor)

    async def _search_within(self, deadline: Deadline, query: str,
                             conversation_id: str | None, user_id: str,
                             limit: int, after: Cursor | None) -> SearchPage:
        """The substring scan on a connection of the search pool, once it has its slot."""
        async with ReadConnection(self._engine) as conn:
            # The scope first, outside the deadline: one indexed read of the memberships.
            conversation_ids, left_out = ([conversation_id], None) \
                if conversation_id is not None else await self._search_scope(conn, user_id)
            match = self._dialect.contains_insensitive(messages.c.content, query)
            async with _bounded(conn, deadline):
                found = await scan(conn, self._dialect, conversation_ids, match, limit,
                                   self._search.scan_limit, deadline, after)
                page = await _load_found(conn, found.ids, deadline)
        truncated = not found.complete
        if left_out is not None:
            # Conversations beyond the cap may hold newer matches than the oldest one here.
            truncated = truncated or len(found.ids) < limit or (
                bool(page) and page[-1].created_at < left_out)
        next_cursor = None if found.position is None else search_cursor.encode(
            _SUBSTRING_CURSOR, found.position)
        return SearchPage(page, truncated, mode="substring", next_cursor=next_cursor)

    async def _search_scope(self, conn: AsyncConnection,
                            user_id: str) -> tuple[list[str], int | None]:
        """The conversations a substring search without `conversation_id` covers: the
        user's readable memberships, the most recently active first, at most the cap; and
        the last activity of the newest one left out (None: none was)."""
        cap = self._search.conversations
        rows = (await conn.execute(
            select(conversations.c.id, conversations.c.last_activity_at)
            .join(members, members.c.conversation_id == conversations.c.id)
            .where(members.c.user_id == user_id, members.c.role.in_(READABLE_ROLES))
            .order_by(conversations.c.last_activity_at.desc(), conversations.c.id)
            .limit(cap + 1)
        )).all()
        left_out = int(rows[cap].last_activity_at) if len(rows) > cap else None
        return [row.id for row in rows[:cap]], left_out


@contextlib.asynccontextmanager
async def _bounded(conn: AsyncConnection, deadline: Deadline) -> AsyncIterator[None]:
    """`deadline` bounds the statements of `conn` for the duration of the block."""
    await deadline.attach(conn)
    try:
        yield
    finally:
        await deadline.detach()


async def _load_found(conn: AsyncConnection, ids: list[str],
                      deadline: Deadline) -> list[Message]:
    """The messages found (in `ids`' order), once the search that found them is over."""
    deadline.relax()
    await conn.rollback()  # ends a transaction a timeout may have aborted
    loaded = await _live_messages(conn, ids) if ids else {}
    return [loaded[i] for i in ids if i in loaded]


async def _live_messages(conn: AsyncConnection, ids: list[str]) -> dict[str, Message]:
    """The messages found, unless deleted since the search saw them."""
    rows = (await conn.execute(message_select().where(
        messages.c.id.in_(ids), messages.c.deleted_at.is_(None)))).all()
    return {m.id: m for m in await with_reactions(conn, rows)}
