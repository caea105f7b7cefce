"""mentions, threads and member settings

Revision ID: 0011
Revises: 0010

- `messages.mentions`: the user ids a message mentions (a JSON array as text; `@here` and
  `@all` as themselves), stored on the message so that later readers (the webhooks'
  offline path) find them there.
- `message_mentions`: one row per mentioned member of a message (its `seq` and sender; user
  id "" for `@here`/`@all`), so a member's `mention_count` (mentions after their read
  mark) is an indexed range count.
- `messages.reply_count`, `messages.last_reply_at`: a thread's live replies (those with
  the message as `parent_id`, not deleted) and when the latest was sent; an index on
  `(conversation_id, parent_id, seq)` for reading a thread a page at a time.
- `members.muted`, `members.pinned`: the member's own settings of the conversation.

Existing rows get no mentions and unmuted, unpinned memberships; existing threads get
their counts from their stored replies (no version is taken: the counts are new fields,
not changes a client missed).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


# The counts of the threads stored before this revision, from their live replies.
_COUNT_REPLIES = """
UPDATE messages SET
  reply_count = (SELECT count(*) FROM messages AS r
                 WHERE r.parent_id = messages.id AND r.deleted_at IS NULL),
  last_reply_at = (SELECT max(r.created_at) FROM messages AS r
                   WHERE r.parent_id = messages.id AND r.deleted_at IS NULL)
WHERE id IN (SELECT parent_id FROM messages WHERE parent_id IS NOT NULL)
"""


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mentions", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("reply_count", sa.BigInteger(), nullable=False,
                                      server_default="0"))
        batch_op.add_column(sa.Column("last_reply_at", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_messages_thread", ["conversation_id", "parent_id", "seq"])
    op.execute(_COUNT_REPLIES)
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("muted", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column("pinned", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.create_table(
        "message_mentions",
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("sender_id", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", "user_id", "seq"),
    )


def downgrade() -> None:
    op.drop_table("message_mentions")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("pinned")
        batch_op.drop_column("muted")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_thread")
        batch_op.drop_column("last_reply_at")
        batch_op.drop_column("reply_count")
        batch_op.drop_column("mentions")
