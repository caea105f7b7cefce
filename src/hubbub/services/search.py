"""SearchMessages (PROTOCOL.md §3): words on a full-text index, or a literal substring, of
the live messages the actor may read; with where each match is in each result."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import msgspec

from hubbub.domain.models import SearchPage
from hubbub.protocol.client import SearchMessages
from hubbub.protocol.server import Highlight, MatchRange, SearchResults
from hubbub.services.access import Access
from hubbub.services.context import Actor
from hubbub.services.views import message_object
from hubbub.storage.search import (
    WORD,
    RequestedMode,
    SearchMode,
    SearchStore,
    choose_mode,
    query_words,
)

Span = tuple[int, int]  # (start, length) in code points


class SearchService:
    def __init__(self, search: SearchStore, access: Access) -> None:
        self._search = search
        self._access = access

    async def search(self, actor: Actor, query: str, conversation_id: str | None,
                     limit: int, *, mode: RequestedMode = "auto",
                     cursor: str | None = None) -> SearchPage:
        """In one conversation the actor may read, or in the conversations the actor is a
        member of and may read (a channel not joined is searched by id); in the mode the
        query asks for (storage/search.py), from `cursor` on.

        Access is checked up front for one conversation, and inside the query for the
        memberships, so no conversation the actor cannot read ever contributes a result.

        Raises:
            BadRequest: a words search of a query without a word; a cursor not of this
                search.
            NotFound, Forbidden: for `conversation_id` (unknown, or not readable).
            RateLimited: the instance's searches are all busy for a moment.
        """
        chosen = choose_mode(query, mode)
        if conversation_id is not None:
            await self._access.require_readable(actor, conversation_id)
        page = await self._search.search(actor.user_id, query, conversation_id, limit,
                                         mode=chosen, cursor=cursor)
        return msgspec.structs.replace(
            page, highlights=[highlight(m.content, query, chosen) for m in page.messages])


def search_results(request: SearchMessages, page: SearchPage,
                   request_id: str | None) -> SearchResults:
    """The answer to `request` (PROTOCOL.md §3), found `page`."""
    return SearchResults(
        query=request.query, conversation_id=request.conversation_id,
        messages=[message_object(m) for m in page.messages], truncated=page.truncated,
        request_id=request_id, mode="words" if page.mode == "words" else "substring",
        next_cursor=page.next_cursor,
        highlights=[Highlight(m.id, [MatchRange(start, length) for start, length in spans])
                    for m, spans in zip(page.messages, page.highlights, strict=True)])


def highlight(content: str, query: str, mode: SearchMode) -> list[Span]:
    """Where `query` matches in `content`: each word that begins with a word of the query
    (`words`), or each occurrence of the query ignoring case (`substring`)."""
    if mode == "words":
        words = tuple(query_words(query))
        return [(m.start(), m.end() - m.start()) for m in WORD.finditer(content)
                if m.group().lower().startswith(words)]
    return _occurrences(content, query.lower())


def _occurrences(content: str, needle: str) -> list[Span]:
    """Non-overlapping occurrences of `needle` (lower case) in `content` lowered: lowered
    per character, as lowering may lengthen one ("İ" is two), then mapped back."""
    pieces = [ch.lower() for ch in content]
    starts = _starts(pieces)
    folded = "".join(pieces)
    found: list[Span] = []
    at = folded.find(needle) if needle else -1
    while at >= 0:
        end = at + len(needle)
        first = bisect.bisect_right(starts, at) - 1
        last = bisect.bisect_left(starts, end)  # the first character wholly after it
        found.append((first, last - first))
        at = folded.find(needle, end)
    return found


def _starts(pieces: Sequence[str]) -> list[int]:
    """Where each character's lowered form starts in their concatenation."""
    starts, at = [], 0
    for piece in pieces:
        starts.append(at)
        at += len(piece)
    return starts
