"""search: an index per conversation and time

Revision ID: 0006
Revises: 0005

A search reads each conversation of its scope newest first and merges them
(storage/search_scan.py): that needs the messages of one conversation in time order,
`(conversation_id, created_at, seq)`, `seq` breaking ties. The global `created_at` index of
0004 served the old cross-conversation search, which walked the whole deployment's
messages newest first and filtered them afterwards; nothing reads it any more.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_conversation_created",
                              ["conversation_id", "created_at", "seq"], unique=False)
        batch_op.drop_index("ix_messages_created_at")


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_created_at", ["created_at"], unique=False)
        batch_op.drop_index("ix_messages_conversation_created")
