"""search index and reacted_at

Revision ID: 0002
Revises: 0001

- `messages.reacted_at`: when the message's reactions last changed, so that
  `SyncMessages{since}` finds reaction changes as well as creations, edits and deletions.
- PostgreSQL only: a `pg_trgm` GIN index on `messages.content`, which `ILIKE '%…%'` (the
  search of PROTOCOL.md §3) uses. Without the privilege to create the extension the index
  is skipped with a warning: search stays correct, only slower. No-op on SQLite.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

log = logging.getLogger("hubbub.migrations")


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reacted_at', sa.BigInteger(), nullable=True))

    bind = op.get_bind()
    if bind.dialect.name != 'postgresql':
        return
    try:
        # A savepoint, so that a refused CREATE EXTENSION does not abort the migration.
        with bind.begin_nested():
            op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    except sa.exc.DBAPIError as exc:
        log.warning("pg_trgm unavailable (%s); search runs without its index",
                    type(exc).__name__)
        return
    op.execute('CREATE INDEX IF NOT EXISTS ix_messages_content_trgm '
               'ON messages USING gin (content gin_trgm_ops)')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP INDEX IF EXISTS ix_messages_content_trgm')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('reacted_at')
