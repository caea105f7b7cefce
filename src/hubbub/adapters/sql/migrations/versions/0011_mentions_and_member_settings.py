"""mentions and member settings

Revision ID: 0011
Revises: 0010

- `messages.mentions`: the user ids a message mentions (a JSON array as text; `@here` and
  `@all` as themselves), stored on the message so that later readers (the webhooks'
  offline path) find them there.
- `message_mentions`: one row per mentioned member of a message (its `seq` and sender; user
  id "" for `@here`/`@all`), so a member's `mention_count` (mentions after their read
  mark) is an indexed range count.
- `members.muted`, `members.pinned`: the member's own settings of the conversation.

Existing rows get no mentions and unmuted, unpinned memberships.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mentions", sa.Text(), nullable=True))
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
        batch_op.drop_column("mentions")
