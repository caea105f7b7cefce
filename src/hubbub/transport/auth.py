"""Finding the caller's credentials on an HTTP request (PROTOCOL.md §1, §7); the
Authenticator (services/authentication.py) checks them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol
from urllib.parse import parse_qsl


class RequestHead(Protocol):
    """What credentials are read from: an aiohttp request, or a handshake read without
    aiohttp (websocket/handshake.py)."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def raw_path(self) -> str: ...

    @property
    def remote(self) -> str | None: ...


def bearer_token(request: RequestHead) -> str | None:
    """The token of an `Authorization: Bearer <jwt>` header, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def websocket_token(request: RequestHead) -> str | None:
    """§1: the `token` query parameter first (browsers cannot set headers), then the header."""
    token = query_value(request, "token")
    if token:
        return token
    return bearer_token(request)


def query_value(request: RequestHead, name: str) -> str | None:
    """The first value of a query parameter, parsed afresh from the request target.

    `request.query` keeps its parse (a MultiDict and its strings, ~0.7 KiB with a JWT) on
    the request's URL, which lives as long as the WebSocket connection; `urlsplit` keeps
    its last results in a process-wide cache, so the last 128 targets and their tokens
    would stay after their connections closed. The query is what follows the first `?`
    (without a `#` fragment), as `urlsplit` reads it.
    """
    query = request.raw_path.partition("#")[0].partition("?")[2]
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == name:
            return value
    return None
