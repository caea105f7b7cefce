"""Finding and checking the caller's credentials on an HTTP request (PROTOCOL.md §1, §7)."""

from __future__ import annotations

import time

from aiohttp import web

from hubbub.domain.errors import Unauthorized
from hubbub.domain.tokens import Identity, TokenVerifier


def bearer_token(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer <jwt>` header, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def websocket_token(request: web.Request) -> str | None:
    """§1: the `token` query parameter first (browsers cannot set headers), then the header."""
    token = request.query.get("token")
    if token:
        return token
    return bearer_token(request)


def authenticate(verifier: TokenVerifier, token: str | None) -> Identity:
    """Verify a token, or raise Unauthorized."""
    if not token:
        raise Unauthorized("missing token")
    return verifier.verify(token, now=time.time())
