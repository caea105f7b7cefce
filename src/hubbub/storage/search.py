"""SearchMessages (PROTOCOL.md §3): which mode a query runs in, and the store that runs it.

Two modes (docs/DECISIONS.md, "Full-text search"):
- `words`: every word of the query begins a word of the message (case-insensitive),
  answered from a full-text index, best match first (bm25 / ts_rank), then newest;
- `substring`: the query occurs literally in the message (case-insensitive; `%`, `_`
  and `\\` literal), newest first, by examining the newest messages of the scope.

`auto` (the default) picks `words` when the query is only words (letters and digits,
separated by white space), each of at least MIN_WORD_CHARS, together at least
MIN_WORDS_CHARS characters long; else `substring`: a short query or one with punctuation
asks for characters, not words (and a one-letter prefix term is the index's costliest).
"""

from __future__ import annotations

import re
from typing import Literal, Protocol

from hubbub.domain.errors import BadRequest
from hubbub.domain.models import SearchPage

SearchMode = Literal["words", "substring"]
RequestedMode = Literal["auto", "words", "substring"]

# Shorter queries ("zq", "#1") are rarely whole words; a literal match is what they mean.
MIN_WORDS_CHARS = 3
MIN_WORD_CHARS = 2
# A word as both indexes see one: a run of letters and digits (no underscore).
WORD = re.compile(r"[^\W_]+")
_ONLY_WORDS = re.compile(r"[^\W_]+(?:\s+[^\W_]+)*")


def choose_mode(query: str, requested: RequestedMode) -> SearchMode:
    """The mode `query` runs in (the rule of the module docstring).

    Raises:
        BadRequest: `words` was asked for a query without a word.
    """
    if requested == "words":
        if not WORD.search(query):
            raise BadRequest("a words search needs a letter or digit - at `$.query`")
        return "words"
    if requested == "substring":
        return "substring"
    stripped = query.strip()
    if len(stripped) >= MIN_WORDS_CHARS and _ONLY_WORDS.fullmatch(stripped) and all(
            len(word) >= MIN_WORD_CHARS for word in stripped.split()):
        return "words"
    return "substring"


def query_words(query: str) -> list[str]:
    """The distinct words of `query`, lower case, in order."""
    return list(dict.fromkeys(w.lower() for w in WORD.findall(query)))


class SearchStore(Protocol):
    async def search(self, user_id: str, query: str, conversation_id: str | None,
                     limit: int, *, mode: SearchMode = "substring",
                     cursor: str | None = None) -> SearchPage:
        """Live messages matching `query` in `mode`: in `conversation_id`, or when None in
        the user's readable memberships (a `substring` search: the most recently active,
        up to a cap). The page after `cursor` (a `next_cursor` of the same search).
        Bounded in its time and the searches running at once (a `substring` search also
        in the messages it examines); a search stopped by a bound says so (`truncated`).

        Raises:
            BadRequest: `cursor` is not one this search handed out.
            RateLimited: every search slot stayed busy for a moment.
        """
