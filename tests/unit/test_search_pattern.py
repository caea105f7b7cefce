"""The literal, case-insensitive substring match of adapters/sql/matching.py, checked on a real
SQLite database (the stdlib driver) with the SQL the store generates."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from sqlalchemy import column
from sqlalchemy.dialects import postgresql, sqlite

from hubbub.adapters.sql.dialect import POSTGRESQL, SQLITE
from hubbub.adapters.sql.matching import escape_like, register_sqlite_functions

CONTENTS = ["100% sure", "100 sure", "snake_case", "snakeXcase", "C:\\temp", "C:temp",
            "ÄRGER", "ärger", "Hello World", "", "%_\\"]


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    register_sqlite_functions(conn, None)
    conn.execute("CREATE TABLE messages (content TEXT)")
    conn.executemany("INSERT INTO messages VALUES (?)", [(c,) for c in CONTENTS])
    yield conn
    conn.close()


def matches(db: sqlite3.Connection, query: str) -> list[str]:
    condition = SQLITE.contains_insensitive(column("content"), query)
    compiled = condition.compile(dialect=sqlite.dialect())
    rows = db.execute(f"SELECT content FROM messages WHERE {compiled}",
                      tuple(compiled.params[name] for name in compiled.positiontup or ()))
    return [row[0] for row in rows]


def test_escape_like_escapes_wildcards_and_the_escape_character() -> None:
    """`%`, `_` and `\\` each get a backslash; nothing else changes."""
    assert escape_like("50%_a\\b") == "50\\%\\_a\\\\b"
    assert escape_like("plain ü") == "plain ü"


@pytest.mark.parametrize(("query", "expected"), [
    ("%", ["100% sure", "%_\\"]),
    ("_", ["snake_case", "%_\\"]),
    ("\\", ["C:\\temp", "%_\\"]),
    ("e_c", ["snake_case"]),
    ("100%", ["100% sure"]),
    ("ärger", ["ÄRGER", "ärger"]),
    ("hello WORLD", ["Hello World"]),
    ("%_\\", ["%_\\"]),
])
def test_sqlite_matches_literally_and_ignoring_case(db: sqlite3.Connection, query: str,
                                                    expected: list[str]) -> None:
    """Wildcards in the query match only themselves; case is folded beyond ASCII."""
    assert matches(db, query) == expected


def test_postgresql_uses_ilike_with_an_escape_clause() -> None:
    """On PostgreSQL the condition is ILIKE (which the pg_trgm index serves) with ESCAPE."""
    condition = POSTGRESQL.contains_insensitive(column("content"), "50%")
    compiled = condition.compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
    assert "ILIKE" in str(compiled)
    assert "ESCAPE" in str(compiled)
    assert list(compiled.params.values()) == ["%50\\%%"]
