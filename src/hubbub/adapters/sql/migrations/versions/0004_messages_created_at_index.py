"""messages created_at index

Revision ID: 0004
Revises: 0003

A search across every conversation a user may read, when no trigram index narrows it,
considers only the newest messages (SqlStore.search's scan cap). With an index on
`created_at` the database walks messages newest first and stops at the cap instead of
reading every readable message to sort them.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_created_at", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_created_at")
