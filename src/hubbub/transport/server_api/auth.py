"""Who may call the server API: a request whose `Authorization: Bearer <key>` is one of
`HUBBUB_API_KEYS`. Without keys the API does not exist (404), so that an instance nobody
configured for it shows nothing of it."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from hubbub.domain.errors import Unauthorized
from hubbub.services.accounts import AccountService
from hubbub.services.conversations import ConversationService
from hubbub.services.dead_letters import DeadLetters
from hubbub.services.messages import MessageService
from hubbub.transport.auth import bearer_token


@dataclass(frozen=True, slots=True)
class ServerApi:
    """What the server API's handlers use: the keys, the body bound, whether the bus can
    carry a close to the other instances, and the use cases they call."""

    api_keys: tuple[str, ...]
    max_body_bytes: int
    bus_healthy: Callable[[], bool]
    conversations: ConversationService
    messages: MessageService
    accounts: AccountService
    dead_letters: DeadLetters


SERVER_API = web.AppKey("server_api", ServerApi)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def key_matches(given: str, keys: tuple[str, ...]) -> bool:
    """Compare with every configured key, in constant time each, without stopping at the
    first match: how long this takes says nothing of which key matched, or how much of
    one did."""
    raw = given.encode()
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(raw, key.encode())
    return matched


def backend_only(handler: Handler) -> Handler:
    """Wrap a handler of the server API: 404 when no key is configured, 401 without one
    of the keys (neither the key nor the header is ever logged)."""

    async def wrapper(request: web.Request) -> web.StreamResponse:
        keys = request.app[SERVER_API].api_keys
        if not keys:
            raise web.HTTPNotFound()
        given = bearer_token(request)
        if given is None or not key_matches(given, keys):
            raise Unauthorized("missing or unknown API key")
        return await handler(request)

    return wrapper
