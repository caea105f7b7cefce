"""The `words` search (PROTOCOL.md §3): a statement on the full-text index of migration
0009, ranked, paged by a keyset cursor, scoped inside the statement.

The scope is a condition of the statement itself (a semi-join against the caller's
readable memberships, or the one conversation the service already checked), so a message
of a conversation the caller cannot read is never a candidate, whatever the index holds.
The index holds live messages only, with their current content, and the statement asks
again for `deleted_at IS NULL` (it reads the row to scope it anyway).

Only a rank window is ranked (docs/DECISIONS.md, "Rank window"): the `window` newest
matches in scope at or below the window's top. Within it the order is the database's
relevance score (lower is better: bm25 on SQLite, the negated ts_rank on PostgreSQL), then
newest, then id. The cursor names the window (its top, fixed by the first page, so newer
messages never shift it) and the last row taken (score, created_at, id); once a full
window is used up, the next cursor starts the next window, the matches older than its
oldest. Pages over an unchanged index neither repeat nor skip.

Where the database can guess from which age on the window lies (Dialect.window_read:
PostgreSQL, docs/DECISIONS.md "Rank window on PostgreSQL"), the statement first reads only
the matches at or above that floor. It holds the window when `window + 1` matches lie
there (every match below is older than all of them); otherwise the statement runs again
without it. So the floor changes what a search reads, never what it answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, get_args

from sqlalchemy import ColumnElement, FromClause, Select, and_, func, or_, select, tuple_
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
# The window's top (its WordMatch.age, whether the top itself is in it), then the
# (score, created_at, id) of the last message taken in it (all None: none yet).
WordsCursor = tuple[list[int | str], bool, float | None, int | None, str | None]

# PROTOCOL.md §5 as data, for queries over many conversations at once: the member roles
# that may read.
READABLE_ROLES = tuple(role for role in get_args(Role) if can(role, Ability.READ))


@dataclass(frozen=True, slots=True)
class WordMatch:
    """A words search in one database's terms (Dialect.word_match)."""

    source: FromClause  # `messages`, joined to the index where it is a table of its own
    match: ColumnElement[bool]
    score: ColumnElement[Any]  # lower is better
    # Newest first when descending, one value per message: what the rank window follows.
    age: tuple[ColumnElement[Any], ...]


@dataclass(frozen=True, slots=True)
class WindowRead:
    """How a words statement reads its rank window (Dialect.window_read)."""

    # A value of the first age column at or above which the window likely lies, tried
    # first (the statement checks it); None: none.
    floor: Any = None
    # The scope in Scope.indexed's form (else Scope.joined's).
    indexed: bool = False


@dataclass(frozen=True, slots=True)
class WordsPage:
    ids: list[str]  # best first
    next_cursor: str | None
    complete: bool  # False: the deadline stopped the statement
    windowed: bool = False  # older matches than this window's exist


@dataclass(frozen=True, slots=True)
class Scope:
    """The conversations searched, as one condition written two ways."""

    # `IN (…)`, a semi-join: one hash probe a row, and rows the planner estimates from
    # the memberships' statistics.
    joined: ColumnElement[bool]
    # Dialect.in_select's form, which an index on conversation_id can read, to combine
    # with the floor (PostgreSQL: `= ANY(ARRAY(…))`, whose length the planner only
    # guesses and whose values a row is compared with one by one).
    indexed: ColumnElement[bool]


def scope(dialect: Dialect, user_id: str, conversation_id: str | None) -> Scope:
    """The conversations searched: `conversation_id` (its access checked by the service),
    or every one `user_id` is a member of with a role that may read."""
    if conversation_id is not None:
        one = messages.c.conversation_id == conversation_id
        return Scope(one, one)
    readable = select(members.c.conversation_id).where(
        members.c.user_id == user_id, members.c.role.in_(READABLE_ROLES))
    return Scope(messages.c.conversation_id.in_(readable),
                 dialect.in_select(messages.c.conversation_id, readable))


def parse_cursor(cursor: str | None) -> WordsCursor | None:
    if cursor is None:
        return None
    after: WordsCursor = search_cursor.decode(CURSOR_KIND, cursor, WordsCursor)
    return after


async def find_words(conn: AsyncConnection, dialect: Dialect, words: Sequence[str],
                     within: Scope, limit: int, after: WordsCursor | None,
                     window: int, deadline: Deadline) -> WordsPage:
    """The best `limit` live messages in `within` holding every word of `words` (as a
    word or a word's beginning), among the rank window's, after `after`."""
    word = dialect.word_match(words)
    try:
        # Planning only: within the search pool's own timeout, the whole budget.
        read = await dialect.window_read(conn, words, _matches(word, within.joined), (
            after[0] if after is not None else None), window + 1)
        rows: Sequence[Any] = []
        if read.floor is not None:
            rows = await _run(conn, _statement(word, within.indexed, limit + 1, after,
                                               window, read.floor), deadline)
        if not (rows and rows[0].in_window > window):
            # No floor, or fewer than the window above it (or a page past the window's
            # last row, which cannot tell): the floor proves nothing, so without it.
            rows = await _run(conn, _statement(
                word, within.indexed if read.indexed else within.joined, limit + 1, after,
                window), deadline)
    except DBAPIError as exc:
        if deadline.interrupted(exc):
            return WordsPage([], None, complete=False)
        raise
    page = rows[:limit]
    full = bool(rows) and rows[0].in_window > window  # older matches lie beyond it
    keys = range(len(word.age))
    if len(rows) > limit:
        last = page[-1]
        top = (after[0], after[1]) if after is not None else (
            [getattr(rows[0], f"top_{n}") for n in keys], True)
        next_cursor: str | None = search_cursor.encode(
            CURSOR_KIND, (*top, float(last.score), last.created_at, last.id))
    elif full:
        # This window is used up: the next one holds the matches older than its oldest.
        next_cursor = search_cursor.encode(
            CURSOR_KIND, ([getattr(rows[0], f"bottom_{n}") for n in keys], False,
                          None, None, None))
    else:
        next_cursor = None
    return WordsPage([row.id for row in page], next_cursor, complete=True, windowed=full)


async def _run(conn: AsyncConnection, statement: Any, deadline: Deadline) -> Sequence[Any]:
    await deadline.before_statement(conn)
    rows: Sequence[Any] = (await conn.execute(statement)).all()
    return rows


def _matches(word: WordMatch, within: ColumnElement[bool]) -> Select[Any]:
    """Every live match in scope, whatever the window: what the window is taken from."""
    return select(messages.c.id).select_from(word.source).where(
        word.match, messages.c.deleted_at.is_(None), within)


def _statement(word: WordMatch, within: ColumnElement[bool], size: int,
               after: WordsCursor | None, window: int, floor: Any = None) -> Any:
    ages = [column.label(f"age_{n}") for n, column in enumerate(word.age)]
    candidates = select(messages.c.id, messages.c.created_at, word.score.label("score"),
                        *ages).select_from(word.source).where(
        word.match, messages.c.deleted_at.is_(None), within)
    if after is not None:
        here, bound = tuple_(*word.age), tuple_(*after[0])
        candidates = candidates.where(
            or_(here < bound, here == bound) if after[1] else here < bound)
    if floor is not None:
        # The first age column alone, at or above the floor and at or below the top: a
        # range of an index, where the tuple comparison above is none.
        candidates = candidates.where(word.age[0] >= floor)
        if after is not None:
            candidates = candidates.where(word.age[0] <= after[0][0])
    # One more than the window: whether older matches exist beyond it.
    windowed = candidates.order_by(*(column.desc() for column in word.age)
                                   ).limit(window + 1).subquery("windowed")
    age = [windowed.c[f"age_{n}"] for n in range(len(ages))]
    newest = [column.desc() for column in age]
    ranked = select(
        windowed, func.row_number().over(order_by=newest).label("position"),
        func.count().over().label("in_window"),
        *(func.first_value(column).over(order_by=newest).label(f"top_{n}")
          for n, column in enumerate(age)),
        *(func.nth_value(column, window).over(order_by=newest, rows=(None, None))
          .label(f"bottom_{n}") for n, column in enumerate(age)),
    ).subquery("ranked")
    statement = select(ranked).where(ranked.c.position <= window)
    if after is not None and after[2] is not None:
        score, created_at, message_id = after[2], after[3], after[4]
        statement = statement.where(or_(
            ranked.c.score > score,
            and_(ranked.c.score == score,
                 tuple_(ranked.c.created_at, ranked.c.id) < tuple_(created_at, message_id))))
    return statement.order_by(ranked.c.score, ranked.c.created_at.desc(),
                              ranked.c.id.desc()).limit(size)
