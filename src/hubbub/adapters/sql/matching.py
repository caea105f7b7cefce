"""Case-insensitive, literal substring matching (the search of PROTOCOL.md §3) per database
(dialect.py picks the form).

PostgreSQL: `content ILIKE '%q%' ESCAPE '\\'`, which folds case by Unicode rules under a
UTF-8 locale and can use the pg_trgm GIN index of migration 0002.

SQLite: its `LIKE` and `lower()` fold ASCII only, so each connection gets a `hubbub_lower`
function (Python's `str.lower`) and the match is `hubbub_lower(content) LIKE lower('%q%')`.
SQLite scans either way; a Python function per row is cheap next to that.

In both, the query's `%`, `_` and `\\` are escaped so that they match themselves.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func

ESCAPE = "\\"
SQLITE_LOWER = "hubbub_lower"


def escape_like(text: str) -> str:
    """`text` with the LIKE wildcards and the escape character itself escaped."""
    return (text.replace(ESCAPE, ESCAPE * 2)
            .replace("%", ESCAPE + "%")
            .replace("_", ESCAPE + "_"))


def ilike(column: ColumnElement[str], query: str) -> ColumnElement[bool]:
    """PostgreSQL's form: `column` contains `query`, ignoring case, with no wildcards."""
    return column.ilike("%" + escape_like(query) + "%", escape=ESCAPE)


def lowered_like(column: ColumnElement[str], query: str) -> ColumnElement[bool]:
    """SQLite's form of the same, through `hubbub_lower` (register_sqlite_functions)."""
    pattern = "%" + escape_like(query.lower()) + "%"
    return func.hubbub_lower(column).like(pattern, escape=ESCAPE)


def _lower(value: str | None) -> str | None:
    return None if value is None else value.lower()


def register_sqlite_functions(dbapi_connection: Any, _record: Any) -> None:
    """Connect-event listener: the SQL functions the SQLite queries rely on."""
    dbapi_connection.create_function(SQLITE_LOWER, 1, _lower, deterministic=True)
