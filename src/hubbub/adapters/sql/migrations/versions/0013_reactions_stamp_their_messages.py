"""reactions stamp their messages

Revision ID: 0013
Revises: 0012

Every reaction's write stamps its message's `reacted_at` (since 0002), and reading
messages now asks for their reactions only when `reacted_at` is set, so a page of
messages nobody reacted to costs one read instead of two. A reaction stored before 0002
left its message unstamped: it gets the time of its newest reaction, so none is hidden.
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "UPDATE messages SET reacted_at = (SELECT MAX(reactions.created_at) FROM reactions "
        "WHERE reactions.message_id = messages.id) "
        "WHERE reacted_at IS NULL AND EXISTS "
        "(SELECT 1 FROM reactions WHERE reactions.message_id = messages.id)")


def downgrade() -> None:
    """The stamps stay: they are true, and 0002's code reads them the same way."""
