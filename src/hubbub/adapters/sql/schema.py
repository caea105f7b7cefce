"""The tables, in SQLAlchemy Core, shared by SQLite and PostgreSQL.

Times are BIGINT microseconds since the epoch (UTC): one representation on both databases,
compared and sorted as integers. Conversation, message and call ids are UUID strings;
user ids are the backend's, up to 128 characters (migration 0007).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

ID = String(36)
USER_ID = String(128)

users = Table(
    "users",
    metadata,
    Column("id", USER_ID, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_seen", BigInteger),
    # Migration 0010: what the backend sets through the server API (PROTOCOL.md §8), and
    # when the user was erased (their tokens are refused until the backend re-creates them).
    Column("avatar_url", String(2048)),
    Column("metadata", Text),
    Column("erased_at", BigInteger),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", ID, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(100)),
    Column("created_by", USER_ID, nullable=False),
    # The one counter per conversation of PROTOCOL.md §2: every change takes the next value.
    Column("version", BigInteger, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
    Column("last_activity_at", BigInteger, nullable=False),
    # For direct conversations, so there is one per pair: the SHA-256 (hex) of the pair's
    # user ids, sorted, joined by a newline (migration 0007; adapters/sql/conversations.py).
    Column("direct_key", String(80), unique=True),
)

members = Table(
    "members",
    metadata,
    Column("conversation_id", ID, primary_key=True),
    Column("user_id", USER_ID, primary_key=True),
    Column("role", String(16), nullable=False),
    Column("joined_at", BigInteger, nullable=False),
    Column("last_read_seq", BigInteger, nullable=False, server_default="0"),
    Column("last_read_at", BigInteger),
    # Migration 0005: when the user first took part (joined, sent, created); None while a
    # membership someone else made is not accepted. Presence goes only through accepted
    # memberships (docs/DECISIONS.md, "Consent").
    Column("accepted_at", BigInteger),
    # Migration 0011: the member's own settings of the conversation.
    Column("muted", Boolean, nullable=False, server_default=false()),
    Column("pinned", Boolean, nullable=False, server_default=false()),
    Index("ix_members_user", "user_id"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", ID, primary_key=True),
    Column("conversation_id", ID, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("sender_id", USER_ID, nullable=False),
    Column("content", Text, nullable=False),
    Column("parent_id", ID),
    Column("attachments", Text),
    Column("client_message_id", String(64)),
    Column("created_at", BigInteger, nullable=False),
    Column("edited_at", BigInteger),
    Column("deleted_at", BigInteger),
    Column("deleted_by", USER_ID),
    # When the reactions last changed (migration 0002), so `SyncMessages{since}` sees them.
    # PostgreSQL also gets a pg_trgm GIN index on `content` there (not declared here: it
    # has no SQLite form).
    Column("reacted_at", BigInteger),
    # Migration 0011: the user ids it mentions, a JSON array (`@here`/`@all` as such).
    Column("mentions", Text),
    # Migration 0011: the thread under it (its live replies) and its latest reply's time.
    Column("reply_count", BigInteger, nullable=False, server_default="0"),
    Column("last_reply_at", BigInteger),
    UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_seq"),
    UniqueConstraint(
        "sender_id", "conversation_id", "client_message_id", name="uq_messages_client_id"
    ),
    Index("ix_messages_conversation_version", "conversation_id", "version"),
    # Search reads each conversation newest first and merges them (migration 0006).
    Index("ix_messages_conversation_created", "conversation_id", "created_at", "seq"),
    # A thread, a page at a time (migration 0011).
    Index("ix_messages_thread", "conversation_id", "parent_id", "seq"),
)

# Migration 0011: one row per member a message mentions (user id "" for `@here`/`@all`:
# no user id is empty), so that a member's `mention_count` (mentions after their read
# mark) is a range of the primary key.
message_mentions = Table(
    "message_mentions",
    metadata,
    Column("conversation_id", ID, primary_key=True),
    Column("user_id", USER_ID, primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("message_id", ID, nullable=False),
    # The sender's own messages never count for it (an `@all` row, user id "", is theirs).
    Column("sender_id", USER_ID, nullable=False),
)

message_edits = Table(
    "message_edits",
    metadata,
    Column("message_id", ID, primary_key=True),
    Column("version", BigInteger, primary_key=True),
    Column("previous_content", Text, nullable=False),
    Column("edited_at", BigInteger, nullable=False),
)

reactions = Table(
    "reactions",
    metadata,
    Column("message_id", ID, primary_key=True),
    Column("user_id", USER_ID, primary_key=True),
    Column("emoji", String(64), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
)

receipts = Table(
    "receipts",
    metadata,
    Column("message_id", ID, primary_key=True),
    Column("user_id", USER_ID, primary_key=True),
    Column("conversation_id", ID, nullable=False),
    Column("delivered_at", BigInteger),
    Column("read_at", BigInteger),
)

# Migration 0010: the server API's `Idempotency-Key`s (PROTOCOL.md §8): the same key with
# the same body finds the conversation the first request created.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("resource_id", ID, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

calls = Table(
    "calls",
    metadata,
    Column("id", ID, primary_key=True),
    Column("conversation_id", ID, nullable=False),
    Column("caller_id", USER_ID, nullable=False),
    Column("callee_id", USER_ID, nullable=False),
    Column("call_type", String(8), nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("answered_at", BigInteger),
    Column("ended_at", BigInteger),
    Column("end_reason", String(64)),
    # Migration 0003: the callee's device that answered; only it goes on signalling.
    Column("answered_connection_id", ID),
    Index("ix_calls_conversation", "conversation_id"),
    # Migration 0003: a user's open calls (on their last disconnect), stale ringing calls.
    Index("ix_calls_caller_state", "caller_id", "state"),
    Index("ix_calls_callee_state", "callee_id", "state"),
    Index("ix_calls_state_created", "state", "created_at"),
)

# Migration 0008: outgoing events, inserted in the transaction of their change
# (storage/outbox.py); delivered ones are deleted, dead ones kept until replayed.
webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    # The order of insertion, hence of commit within a conversation (SQLite: the rowid).
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    # `webhook-id`, kept on retries; unique by construction (a random 64-bit prefix per
    # process and a counter: adapters/sql/outbox.py), so no index to update per event.
    Column("id", String(40), nullable=False),
    Column("type", String(40), nullable=False),
    Column("conversation_id", ID, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("data", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("state", String(8), nullable=False),  # "pending" or "dead"
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("retry_from", BigInteger, nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_until", BigInteger),
    Column("last_error", String(200)),
    # Whether an event has an older pending one in its conversation. Claims read the
    # primary key in order and stop at their limit: no index on `next_attempt_at`, which
    # the planners preferred, reading every pending row and sorting them (8 ms a claim at
    # 8000 pending on SQLite, inside the writer's batch).
    Index("ix_webhook_outbox_conversation", "conversation_id", "state", "seq"),
)

# Migration 0012: the conversations owed a `message.undelivered` check (services/
# undelivered.py), from their first unchecked message (`seq`) on; written with the messages.
undelivered_checks = Table(
    "undelivered_checks",
    metadata,
    Column("conversation_id", ID, primary_key=True),
    Column("from_seq", BigInteger, nullable=False),
    Column("due_at", BigInteger, nullable=False),  # its first batch's time + the grace
    Column("lease_owner", String(64)),
    Column("lease_until", BigInteger),
    Index("ix_undelivered_checks_due", "due_at"),
)
