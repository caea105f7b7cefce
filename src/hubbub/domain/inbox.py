"""The inbox's records: what an instance keeps per user and conversation so that it can
tell each connection how its conversations changed without a query per message
(docs/DECISIONS.md, "The inbox")."""

from __future__ import annotations

import msgspec

# A summary's `last_message.content` is cut here: the inbox shows a line, not the message.
PREVIEW_CHARS = 100
# The store counts at most this many unread messages (adapters/sql/conversations.py);
# the inbox's own counting stops at the same bound, so both say "999+" alike.
UNREAD_CAP = 1000


class InboxEntry(msgspec.Struct, frozen=True):
    """One conversation of a user's list, as the inbox starts counting from it."""

    conversation_id: str
    version: int
    member_count: int
    unread_count: int
    mention_count: int = 0
    # The member's own setting: a muted conversation is counted all the same, and its
    # summaries say so (PROTOCOL.md §4.1).
    muted: bool = False


def preview(content: str) -> str:
    """The first PREVIEW_CHARS characters of a message's content."""
    return content[:PREVIEW_CHARS]
