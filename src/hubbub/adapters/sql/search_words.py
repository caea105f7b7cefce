"""The `words` search (PROTOCOL.md §3): one statement on the full-text index of migration
0009, ranked, paged by a keyset cursor, scoped inside the statement.

The scope is a condition of the statement itself (a semi-join against the caller's
readable memberships, or the one conversation the service already checked), so a message
of a conversation the caller cannot read is never a candidate, whatever the index holds.
The index holds live messages only, with their current content, and the statement asks
again for `deleted_at IS NULL` (it reads the row to scope it anyway).

Order: the database's relevance score (lower is better: bm25 on SQLite, the negated
ts_rank on PostgreSQL), then newest, then id; the cursor is the last row's
(score, created_at, id), so pages over an unchanged index neither repeat nor skip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, get_args

from sqlalchemy import ColumnElement, FromClause, and_, or_, select, tuple_
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from hubbub.adapters.sql import search_cursor
from hubbub.adapters.sql.schema import members, messages
from hubbub.adapters.sql.search_budget import Deadline
from hubbub.domain.permissions import Ability, can
from hubbub.protocol.objects import Role

if TYPE_CHECKING:
    from hubbub.adapters.sql.dialect import Dialect

CURSOR_KIND = "w"
WordsCursor = tuple[float, int, str]  # (score, created_at, id) of the last message taken

# PROTOCOL.md §5 as data, for queries over many conversations at once: the member roles
# that may read.
READABLE_ROLES = tuple(role for role in get_args(Role) if can(role, Ability.READ))


@dataclass(frozen=True, slots=True)
class WordMatch:
    """A words search in one database's terms (Dialect.word_match)."""

    source: FromClause  # `messages`, joined to the index where it is a table of its own
    match: ColumnElement[bool]
    score: ColumnElement[Any]  # lower is better


@dataclass(frozen=True, slots=True)
class WordsPage:
    ids: list[str]  # best first
    next_cursor: str | None
    complete: bool  # False: the deadline stopped the statement


def scope(user_id: str, conversation_id: str | None) -> ColumnElement[bool]:
    """The conversations searched: `conversation_id` (its access checked by the service),
    or every one `user_id` is a member of with a role that may read."""
    if conversation_id is not None:
        return messages.c.conversation_id == conversation_id
    readable = select(members.c.conversation_id).where(
        members.c.user_id == user_id, members.c.role.in_(READABLE_ROLES))
    return messages.c.conversation_id.in_(readable)


def parse_cursor(cursor: str | None) -> WordsCursor | None:
    if cursor is None:
        return None
    after: WordsCursor = search_cursor.decode(CURSOR_KIND, cursor, WordsCursor)
    return after


async def find_words(conn: AsyncConnection, dialect: Dialect, words: Sequence[str],
                     within: ColumnElement[bool], limit: int, after: WordsCursor | None,
                     deadline: Deadline) -> WordsPage:
    """The best `limit` live messages in `within` holding every word of `words` (as a
    word or a word's beginning), after `after`."""
    statement = _statement(dialect.word_match(words), within, limit + 1, after)
    await deadline.before_statement(conn)
    try:
        rows: Sequence[Any] = (await conn.execute(statement)).all()
    except DBAPIError as exc:
        if deadline.interrupted(exc):
            return WordsPage([], None, complete=False)
        raise
    page = rows[:limit]
    more = len(rows) > limit
    last = page[-1] if page else None
    next_cursor = search_cursor.encode(
        CURSOR_KIND, (float(last.score), last.created_at, last.id)) if more and last else None
    return WordsPage([row.id for row in page], next_cursor, complete=True)


def _statement(word: WordMatch, within: ColumnElement[bool], size: int,
               after: WordsCursor | None) -> Any:
    ranked = select(messages.c.id, messages.c.created_at, word.score.label("score")
                    ).select_from(word.source).where(
        word.match, messages.c.deleted_at.is_(None), within).subquery("ranked")
    statement = select(ranked.c.id, ranked.c.created_at, ranked.c.score)
    if after is not None:
        score, created_at, message_id = after
        statement = statement.where(or_(
            ranked.c.score > score,
            and_(ranked.c.score == score,
                 tuple_(ranked.c.created_at, ranked.c.id) < tuple_(created_at, message_id))))
    return statement.order_by(ranked.c.score, ranked.c.created_at.desc(),
                              ranked.c.id.desc()).limit(size)
