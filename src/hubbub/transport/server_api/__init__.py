"""The server API (PROTOCOL.md §8): `/api/v1/server/`, for the backend alone, with the keys
of `HUBBUB_API_KEYS`. `install` is the one call that adds it to the app."""

from __future__ import annotations

from hubbub.transport.server_api.auth import SERVER_API, ServerApi
from hubbub.transport.server_api.routes import close_user, install

__all__ = ["SERVER_API", "ServerApi", "close_user", "install"]
