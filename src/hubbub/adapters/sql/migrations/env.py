"""Alembic environment: hubbub passes the connection in; no alembic.ini is needed."""

from __future__ import annotations

from alembic import context

from hubbub.adapters.sql.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
