"""About how many messages hold a word, from the statistics PostgreSQL keeps of
`messages.content_tsv` (pg_stats' most common lexemes and their shares), read at most once
a minute per database: what lets a words search of a rare word skip the planner's
estimate of its rank window (window_floor.py), a round trip and a plan of ~1 ms.

Only a bound for that choice: a word the statistics do not list is held by fewer
messages than the least common one they do (for a prefix, a few such words might add
up to more; the search then reads as it did before floors, correctly).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

# Statistics change with ANALYZE (autovacuum's, after a tenth of the table changed).
TTL_S = 60.0

# The shares follow the lexemes, then the least and the greatest of them.
_STATISTICS = text(
    "SELECT s.most_common_elems::text::text[], s.most_common_elem_freqs, c.reltuples "
    "FROM pg_class c LEFT JOIN pg_stats s ON s.schemaname = current_schema() "
    "AND s.tablename = 'messages' AND s.attname = 'content_tsv' "
    "WHERE c.oid = 'messages'::regclass")


@dataclass(frozen=True, slots=True)
class Lexemes:
    """The most common lexemes (sorted), the share of messages holding each, the least
    share listed, and how many messages the table holds."""

    words: list[str]
    shares: list[float]
    least: float
    messages: float

    def at_most(self, words: Sequence[str]) -> float:
        """About how many messages at most hold all of `words`, each as a word or a
        word's beginning."""
        return self.messages * min((self._share(word) for word in words), default=0.0)

    def _share(self, word: str) -> float:
        first = bisect_left(self.words, word)
        last = first
        while last < len(self.words) and self.words[last].startswith(word):
            last += 1
        return sum(self.shares[first:last]) + self.least


_read: dict[str, tuple[float, Lexemes | None]] = {}  # database URL → (when, statistics)


async def lexemes(conn: AsyncConnection) -> Lexemes | None:
    """This database's statistics, None before it was first analysed."""
    key = conn.engine.url.render_as_string(hide_password=True)
    now = time.monotonic()
    cached = _read.get(key)
    if cached is not None and now - cached[0] < TTL_S:
        return cached[1]
    words, shares, messages = (await conn.execute(_STATISTICS)).one()
    found = None
    if words and shares:
        pairs = sorted(zip(words, shares[:len(words)], strict=True))
        found = Lexemes([w for w, _ in pairs], [share for _, share in pairs],
                        least=float(shares[len(words)]), messages=float(messages))
    _read[key] = (now, found)
    return found
