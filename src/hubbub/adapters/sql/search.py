"""`SearchStore` on SQL: a slot from the gate, then the scan (search_scan.py) on the search
pool, bounded by a deadline (search_budget.py)."""

from __future__ import annotations

from typing import get_args

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hubbub.adapters.sql.dialect import Dialect
from hubbub.adapters.sql.schema import conversations, members, messages
from hubbub.adapters.sql.search_budget import (
    DEFAULT_SEARCH,
    Deadline,
    SearchGate,
    SearchLimits,
    run_abortable,
)
from hubbub.adapters.sql.search_scan import scan
from hubbub.adapters.sql.shared import ReadConnection, message_select, with_reactions
from hubbub.domain.models import Message, SearchPage
from hubbub.domain.permissions import Ability, can
from hubbub.protocol.objects import Role

# PROTOCOL.md §5 as data, for queries over many conversations at once: the member roles
# that may read.
_READABLE_ROLES = tuple(role for role in get_args(Role) if can(role, Ability.READ))


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
                     limit: int) -> SearchPage:
        # The slot is held until the work below has let go of its connection, even when
        # the caller is cancelled (run_abortable waits for it); its time starts now.
        async with self._gate.slot(user_id):
            deadline = self._dialect.new_deadline(self._search.timeout_s)
            return await run_abortable(
                self._search_within(deadline, query, conversation_id, user_id, limit),
                deadline)

    async def _search_within(self, deadline: Deadline, query: str,
                             conversation_id: str | None, user_id: str,
                             limit: int) -> SearchPage:
        """The search on a connection of the search pool, once it has its slot."""
        async with ReadConnection(self._engine) as conn:
            # The scope first, outside the deadline: one indexed read of the memberships.
            scope, left_out = ([conversation_id], None) if conversation_id is not None \
                else await self._search_scope(conn, user_id)
            await deadline.attach(conn)
            try:
                match = self._dialect.contains_insensitive(messages.c.content, query)
                found = await scan(conn, self._dialect, scope, match, limit,
                                   self._search.scan_limit, deadline)
                deadline.relax()
                await conn.rollback()  # ends a transaction a timeout may have aborted
                loaded = await _live_messages(conn, found.ids) if found.ids else {}
            finally:
                await deadline.detach()
        page = [loaded[i] for i in found.ids if i in loaded]
        truncated = not found.complete
        if left_out is not None:
            # Conversations beyond the cap may hold newer matches than the oldest one here.
            truncated = truncated or len(found.ids) < limit or (
                bool(page) and page[-1].created_at < left_out)
        return SearchPage(page, truncated)

    async def _search_scope(self, conn: AsyncConnection,
                            user_id: str) -> tuple[list[str], int | None]:
        """The conversations a search without `conversation_id` covers: the user's readable
        memberships, the most recently active first, at most the cap; and the last activity
        of the newest one left out (None: none was)."""
        cap = self._search.conversations
        rows = (await conn.execute(
            select(conversations.c.id, conversations.c.last_activity_at)
            .join(members, members.c.conversation_id == conversations.c.id)
            .where(members.c.user_id == user_id, members.c.role.in_(_READABLE_ROLES))
            .order_by(conversations.c.last_activity_at.desc(), conversations.c.id)
            .limit(cap + 1)
        )).all()
        left_out = int(rows[cap].last_activity_at) if len(rows) > cap else None
        return [row.id for row in rows[:cap]], left_out


async def _live_messages(conn: AsyncConnection, ids: list[str]) -> dict[str, Message]:
    """The messages found, unless deleted since the scan saw them."""
    rows = (await conn.execute(message_select().where(
        messages.c.id.in_(ids), messages.c.deleted_at.is_(None)))).all()
    return {m.id: m for m in await with_reactions(conn, rows)}
