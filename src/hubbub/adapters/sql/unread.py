"""A member's unread and mention counts, as SQL expressions correlated to its `members`
row: the conversation list (conversations.py) and the counts of every member of one
conversation (members.py) read the same two."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, literal_column, select

from hubbub.adapters.sql.schema import members, message_mentions, messages

# A bound on per-request work (docs/DECISIONS.md, "Conversations"): `unread_count` (and
# `mention_count`) count at most this many messages (clients show "999+").
UNREAD_COUNT_CAP = 1000


def unread_count(cap: int) -> Any:
    """Other users' live messages after the member's read mark, counted up to `cap`: the
    LIMIT inside stops the index range scan there, so a member who never reads a busy
    channel costs at most the cap per listing, not the channel's whole history."""
    return _capped(select(literal_column("1")).select_from(messages).where(
        messages.c.conversation_id == members.c.conversation_id,
        messages.c.seq > members.c.last_read_seq,
        messages.c.sender_id != members.c.user_id,
        messages.c.deleted_at.is_(None)), cap)


def mention_count(cap: int) -> Any:
    """Live messages of others after the member's read mark that mention it (by id, or
    `@here`/`@all`: user id ""), up to `cap`: a range of message_mentions' key per user
    id, each message once. Reading past a message is what resets its mention."""
    return _capped(
        select(message_mentions.c.seq).distinct().select_from(message_mentions.join(
            messages, messages.c.id == message_mentions.c.message_id))
        .where(message_mentions.c.conversation_id == members.c.conversation_id,
               message_mentions.c.user_id.in_([members.c.user_id, ""]),
               message_mentions.c.seq > members.c.last_read_seq,
               message_mentions.c.sender_id != members.c.user_id,
               messages.c.deleted_at.is_(None)), cap)


def _capped(rows: Any, cap: int) -> Any:
    """How many `rows` the member's row has, counting at most `cap`."""
    bounded = rows.correlate(members).limit(cap)
    return select(func.count()).select_from(bounded.subquery()).scalar_subquery()
