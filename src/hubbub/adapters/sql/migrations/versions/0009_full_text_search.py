"""full-text search index

Revision ID: 0009
Revises: 0008

The word search of PROTOCOL.md §3 (docs/DECISIONS.md, "Full-text search") reads an
inverted index of the live messages instead of examining messages one by one:

- SQLite: `messages_fts`, an FTS5 table with external content (`messages` itself, by
  rowid, so the text is stored once), tokenizer `unicode61 remove_diacritics 0` (Unicode
  case folding, accents kept: the same words as PostgreSQL's `simple`). Triggers keep it
  in step with every write, whoever writes: a message is in the index while it is live,
  with its current content; an edit replaces its words, a soft delete removes them.
  Existing live messages are indexed here (the backfill).
- PostgreSQL: `messages.content_tsv`, a stored generated column
  `to_tsvector('simple', content)` (recomputed by every edit; adding it fills it for the
  existing rows), and a GIN index on it for live messages only.

A later migration that rebuilds `messages` on SQLite (a batch "move and copy") drops the
triggers with the old table and may renumber rowids: it must call `drop_sqlite()` before
and `create_sqlite()` after (which re-indexes).
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

SQLITE_TABLE = "messages_fts"
# 'delete' of an external-content FTS5 table must be given the values that were indexed:
# those of a live row (only live rows are indexed).
_SQLITE_CREATE = (
    f"""CREATE VIRTUAL TABLE {SQLITE_TABLE} USING fts5(
        content, content='messages', content_rowid='rowid',
        tokenize='unicode61 remove_diacritics 0')""",
    f"""INSERT INTO {SQLITE_TABLE}(rowid, content)
        SELECT rowid, content FROM messages WHERE deleted_at IS NULL""",
    f"""CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
        WHEN new.deleted_at IS NULL BEGIN
          INSERT INTO {SQLITE_TABLE}(rowid, content) VALUES (new.rowid, new.content);
        END""",
    f"""CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
        WHEN old.deleted_at IS NULL BEGIN
          INSERT INTO {SQLITE_TABLE}({SQLITE_TABLE}, rowid, content)
          VALUES ('delete', old.rowid, old.content);
        END""",
    f"""CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, deleted_at ON messages
        BEGIN
          INSERT INTO {SQLITE_TABLE}({SQLITE_TABLE}, rowid, content)
          SELECT 'delete', old.rowid, old.content WHERE old.deleted_at IS NULL;
          INSERT INTO {SQLITE_TABLE}(rowid, content)
          SELECT new.rowid, new.content WHERE new.deleted_at IS NULL;
        END""",
)
_SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS messages_fts_update",
    "DROP TRIGGER IF EXISTS messages_fts_delete",
    "DROP TRIGGER IF EXISTS messages_fts_insert",
    f"DROP TABLE IF EXISTS {SQLITE_TABLE}",
)
# 'simple': lower case, no stemming and no stop words, so it is right for any language
# and for chat's names, codes and mixed languages, and finds what SQLite's index finds.
_POSTGRES_CREATE = (
    "ALTER TABLE messages ADD COLUMN content_tsv tsvector "
    "GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, content)) STORED",
    "CREATE INDEX ix_messages_content_tsv ON messages USING gin (content_tsv) "
    "WHERE deleted_at IS NULL",
)
_POSTGRES_DROP = (
    "DROP INDEX IF EXISTS ix_messages_content_tsv",
    "ALTER TABLE messages DROP COLUMN IF EXISTS content_tsv",
)


def _run(statements: tuple[str, ...]) -> None:
    for statement in statements:
        op.execute(statement)


def _on_postgres() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def create_sqlite() -> None:
    _run(_SQLITE_CREATE)


def drop_sqlite() -> None:
    _run(_SQLITE_DROP)


def upgrade() -> None:
    _run(_POSTGRES_CREATE if _on_postgres() else _SQLITE_CREATE)


def downgrade() -> None:
    _run(_POSTGRES_DROP if _on_postgres() else _SQLITE_DROP)
