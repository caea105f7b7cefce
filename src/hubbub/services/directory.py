"""The channel directory (PROTOCOL.md §7, `GET /api/v1/channels`): how a user finds the
public channels it may join, since the list of its own conversations shows only those it
is already in. Private groups and direct conversations are never listed."""

from __future__ import annotations

import base64
import binascii

import msgspec

from hubbub.domain.clock import format_time
from hubbub.domain.errors import BadRequest
from hubbub.domain.models import ChannelListing
from hubbub.services.context import Actor
from hubbub.storage.conversations import ConversationStore

# The bounds of one page and of the name filter (a channel's name is at most 100).
MAX_PAGE = 100
DEFAULT_PAGE = 50
MAX_QUERY_CHARS = 100
# A cursor holds a name (at most 100 characters, 4 bytes each in UTF-8) and an id.
MAX_CURSOR_CHARS = 700


class ChannelEntry(msgspec.Struct, frozen=True):
    """A channel of the directory; `is_member`: whether the caller is in it already."""

    id: str
    name: str
    created_at: str
    member_count: int
    is_member: bool


class ChannelPage(msgspec.Struct, frozen=True):
    """One page; `next_cursor`: pass it as `cursor` for the next (None: the last page)."""

    channels: list[ChannelEntry]
    next_cursor: str | None


class ChannelDirectory:
    def __init__(self, conversations: ConversationStore) -> None:
        self._conversations = conversations

    async def page(self, actor: Actor, query: str, limit: int,
                   cursor: str | None) -> ChannelPage:
        """At most `limit` (1–MAX_PAGE) public channels whose name contains `query`
        (ignoring case; "" for all), by name, after `cursor` (a `next_cursor` of the same
        listing). Open to every user: a channel is public.

        Raises:
            BadRequest: naming `limit`, `query` or `cursor`.
        """
        if not 1 <= limit <= MAX_PAGE:
            raise BadRequest(f"limit must be 1-{MAX_PAGE} - at `limit`")
        if len(query) > MAX_QUERY_CHARS:
            raise BadRequest(f"query is at most {MAX_QUERY_CHARS} characters - at `query`")
        after = None if cursor is None else decode_cursor(cursor)
        # One more than asked tells whether a next page exists, so the last page says so.
        rows = await self._conversations.list_channels(actor.user_id, query, after,
                                                       limit + 1)
        shown = rows[:limit]
        more = encode_cursor(shown[-1]) if len(rows) > limit else None
        return ChannelPage([_entry(row) for row in shown], more)


def encode_cursor(last: ChannelListing) -> str:
    """The position after `last`: its name and id, as URL-safe base64 of JSON."""
    return base64.urlsafe_b64encode(msgspec.json.encode([last.name, last.id])).decode()


def decode_cursor(cursor: str) -> tuple[str, str]:
    """The `(name, id)` an `encode_cursor` cursor holds, or BadRequest at `cursor`."""
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError
        name, channel_id = msgspec.json.decode(base64.urlsafe_b64decode(cursor),
                                               type=tuple[str, str])
    except (ValueError, binascii.Error, msgspec.DecodeError):
        raise BadRequest("not a cursor of this listing - at `cursor`") from None
    return name, channel_id


def _entry(row: ChannelListing) -> ChannelEntry:
    return ChannelEntry(row.id, row.name, format_time(row.created_at), row.member_count,
                        row.is_member)
