"""backend user ids

Revision ID: 0007
Revises: 0006

User ids are the backend's own (PROTOCOL.md §2): up to 128 printable ASCII characters, not
only UUIDs. Every column holding one widens from 36 to 128 characters; existing rows keep
their values (on PostgreSQL widening a VARCHAR rewrites nothing; SQLite copies each table,
as its batch mode does for any column change).

`conversations.direct_key` was "low-uuid:high-uuid": with free-form ids a colon could sit
inside an id (two pairs, one key) and two 128-character ids overflow the column. It becomes
the SHA-256 (hex, 64 characters) of the sorted ids joined by a newline, which no id holds;
the stored keys are recomputed from the old ones, whose UUIDs hold no colon.

Downgrade narrows the columns again, so it fails on PostgreSQL once a longer id is stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Every column that holds a user id, by table.
USER_ID_COLUMNS = {
    "users": ("id",),
    "conversations": ("created_by",),
    "members": ("user_id",),
    "messages": ("sender_id", "deleted_by"),
    "reactions": ("user_id",),
    "receipts": ("user_id",),
    "calls": ("caller_id", "callee_id"),
}
NULLABLE = {("messages", "deleted_by")}


def _key(user_ids: list[str]) -> str:
    """The key of adapters/sql/conversations.py `direct_key`, as of this revision."""
    return hashlib.sha256("\n".join(sorted(set(user_ids))).encode()).hexdigest()


def _resize(old: int, new: int) -> None:
    for table, columns in USER_ID_COLUMNS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.alter_column(column, existing_type=sa.String(old),
                                      type_=sa.String(new),
                                      existing_nullable=(table, column) in NULLABLE)


def _rekey(new_key: Callable[[str, str], str]) -> None:
    """Rewrite every direct conversation's key with `new_key(conversation_id, old_key)`."""
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT id, direct_key FROM conversations WHERE direct_key IS NOT NULL")).all()
    for conversation_id, old_key in rows:
        bind.execute(sa.text("UPDATE conversations SET direct_key = :key WHERE id = :id"),
                     {"key": new_key(conversation_id, old_key), "id": conversation_id})


def upgrade() -> None:
    _resize(36, 128)
    _rekey(lambda _id, old: _key(old.split(":")))


def downgrade() -> None:
    bind = op.get_bind()

    def members_key(conversation_id: str, _old: str) -> str:
        ids = bind.execute(sa.text("SELECT user_id FROM members WHERE conversation_id = :c"),
                           {"c": conversation_id}).scalars().all()
        return ":".join(sorted(set(ids)))

    _rekey(members_key)
    _resize(128, 36)
