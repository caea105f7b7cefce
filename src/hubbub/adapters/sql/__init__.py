"""The SQL adapter behind the storage seam: SQLite and PostgreSQL on SQLAlchemy Core, one
store per noun, chosen by URL scheme. Only the composition root imports it."""

from __future__ import annotations

from hubbub.adapters.sql.database import SqlDatabase, open_sql_database
from hubbub.adapters.sql.search_budget import SearchLimits

__all__ = ["SearchLimits", "SqlDatabase", "open_sql_database"]
