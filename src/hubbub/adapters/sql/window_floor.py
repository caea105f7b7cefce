"""How PostgreSQL's words search reads its rank window (docs/DECISIONS.md, "Rank window
on PostgreSQL"): a `created_at` floor for the first statement, guessed from the planner's
statistics, so that a common word reads the heap of its recent matches only; and the form
of the scope.

The GIN match of a common word holds tens of thousands of rows; ordering them by
(created_at, id) to find the window reads every one from the heap. With a floor, the
statement's bitmap is the GIN's ANDed with the (conversation_id, created_at) index's over
the scope's messages since the floor, and only those rows are read. The floor is a guess;
the statement checks it (search_words.py): a window found whole above it is the window,
since every match below is older than all of it, and otherwise the statement runs again
without one. So a guess changes what a search costs, never what it answers.

The guess: a word that all conversations together hold too rarely to fill a window
(lexemes.py) gets none, with no round trip. Otherwise the planner's estimate of the
matches in scope (EXPLAIN, as PostgreSQL's wiki counts rows cheaply) and the `created_at`
histogram of `messages` (pg_stats), read as if the scope's matches were spread over time
as all messages are: the floor is the time above which `wanted` of the estimated matches
fall, counted down from the window's top.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any, ClassVar

from sqlalchemy import Select, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ClauseElement, Executable
from sqlalchemy.sql.visitors import InternalTraversal

from hubbub.adapters.sql.lexemes import lexemes
from hubbub.adapters.sql.search_words import WindowRead

# A floor only where the window is less than this share of the estimated matches: from
# it on the bounded read saves little, and an estimate a little high would cost a second
# statement.
MAX_SHARE = 0.5

_HISTOGRAM = text(
    "SELECT histogram_bounds::text FROM pg_stats WHERE schemaname = current_schema() "
    "AND tablename = 'messages' AND attname = 'created_at'")


class _Explain(Executable, ClauseElement):
    """`EXPLAIN (FORMAT JSON)` of a select, its parameters bound as the select's."""

    # Compiled once per shape of the select, as the select itself would be (~0.7 ms).
    inherit_cache = True
    # SQLAlchemy's own type for it is a list, read per class, never changed.
    _traverse_internals = [("statement", InternalTraversal.dp_clauseelement)]  # noqa: RUF012
    # The plan's one column is none of the select's.
    _all_selected_columns: ClassVar[tuple[Any, ...]] = ()

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement


@compiles(_Explain, "postgresql")
def _compile_explain(element: _Explain, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + str(compiler.process(element.statement, **kw))


async def window_read(conn: AsyncConnection, words: Sequence[str], matches: Select[Any],
                      top: int | None, wanted: int) -> WindowRead:
    """How to read the newest `wanted` rows of `matches` (the messages holding `words`)
    at or below `top` (None: the newest): from which `created_at` on, if any, and whether
    the scope is read by index (when the estimate says the window fills: the scope's
    matches are then many, and a bitmap of its conversations spares reading the others'
    from the heap)."""
    known = await lexemes(conn)
    if known is None or known.at_most(words) < wanted:
        return WindowRead()  # too few in all conversations to fill a window
    estimate = await _estimated_rows(conn, matches)
    indexed = estimate >= wanted
    if wanted >= estimate * MAX_SHARE:
        return WindowRead(None, indexed)  # not even counting `top`: no histogram needed
    bounds = parse_bounds((await conn.execute(_HISTOGRAM)).scalar())
    return WindowRead(floor_of(bounds, top, wanted, estimate), indexed)


async def _estimated_rows(conn: AsyncConnection, statement: Select[Any]) -> float:
    plan: Any = (await conn.execute(_Explain(statement))).scalar()
    if isinstance(plan, str):
        plan = json.loads(plan)
    return float(plan[0]["Plan"]["Plan Rows"])


def parse_bounds(histogram: str | None) -> list[int]:
    """pg_stats' `histogram_bounds` of a bigint column, as text (`{1,5,9}`)."""
    if not histogram:
        return []
    return [int(value) for value in histogram.strip("{}").split(",")]


def floor_of(bounds: Sequence[int], top: int | None, wanted: int,
             estimate: float) -> int | None:
    """The time above which `wanted` of `estimate` matches spread as the histogram
    `bounds` says (each bucket between two bounds holds as many messages) lie, counting
    down from `top`; None where the histogram is missing or the floor would take
    MAX_SHARE of the matches at or below `top` or more."""
    buckets = len(bounds) - 1
    if buckets < 1 or estimate <= 0:
        return None
    below_top = 1.0 if top is None else _fraction_at(bounds, top)
    if wanted >= estimate * below_top * MAX_SHARE:
        return None
    at = (below_top - wanted / estimate) * buckets  # in buckets, from the oldest bound
    bucket = min(int(at), buckets - 1)
    low, high = bounds[bucket], bounds[bucket + 1]
    return int(low + (high - low) * (at - bucket))


def _fraction_at(bounds: Sequence[int], value: int) -> float:
    """The share of the messages at or below `value`, interpolated within its bucket."""
    buckets = len(bounds) - 1
    if value >= bounds[-1]:
        return 1.0
    if value <= bounds[0]:
        return 0.0
    bucket = bisect_right(bounds, value) - 1
    low, high = bounds[bucket], bounds[bucket + 1]
    within = (value - low) / (high - low) if high > low else 1.0
    return (bucket + within) / buckets
