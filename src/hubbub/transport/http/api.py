"""What the HTTP API of PROTOCOL.md §7 uses, and the steps every handler shares: the
caller (a bearer token, its rate-limit token, its user) and the path and query values."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from hubbub.coordination.ratelimit import RateLimiter
from hubbub.domain.errors import BadRequest
from hubbub.domain.models import User
from hubbub.domain.ratelimit import BucketRule
from hubbub.domain.tokens import Identity
from hubbub.protocol.objects import USER_ID_RULE, canonical_user_id, is_id, is_user_id
from hubbub.services.authentication import Authenticator
from hubbub.services.calls import CallService
from hubbub.services.context import Actor
from hubbub.services.conversations import ConversationService
from hubbub.services.directory import ChannelDirectory
from hubbub.services.member_settings import MemberSettings
from hubbub.services.messages import MessageService
from hubbub.services.presence import PresenceService
from hubbub.services.tickets import TicketService
from hubbub.services.users import UserService
from hubbub.transport.auth import bearer_token


@dataclass(frozen=True, slots=True)
class Api:
    """The use cases the HTTP handlers call, and the caller's checks."""

    authenticator: Authenticator
    limiter: RateLimiter
    send_rule: BucketRule
    other_rule: BucketRule
    max_body_bytes: int
    users: UserService
    conversations: ConversationService
    messages: MessageService
    presence: PresenceService
    tickets: TicketService
    calls: CallService
    member_settings: MemberSettings
    directory: ChannelDirectory


API = web.AppKey("api", Api)

Handler = Callable[[web.Request, Api, Actor], Awaitable[web.StreamResponse]]


def authed(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Wrap a handler that needs the caller: a bearer token, verified, its user registered."""

    async def wrapper(request: web.Request) -> web.StreamResponse:
        api = request.app[API]
        _, user = await caller(api, request)
        return await handler(request, api, Actor(user.id, user.name))

    return wrapper


async def caller(api: Api, request: web.Request) -> tuple[Identity, User]:
    """Verify the bearer token, take an "other action" from the user's bucket, then
    register or refresh the user: that upsert is a database write, which a request the
    limiter refuses must not cost.

    Raises:
        Unauthorized: no valid token. RateLimited: the user's bucket is empty.
    """
    identity = await api.authenticator.authenticate(bearer_token(request))
    await api.limiter.hit("o:" + identity.user_id, api.other_rule)
    return identity, await api.users.seen(identity)


def path_user_id(request: web.Request) -> str:
    """The `{user_id}` path parameter (§2: the backend's id), or BadRequest naming it."""
    value = request.match_info["user_id"]
    if not is_user_id(value):
        raise BadRequest(f"user_id must be {USER_ID_RULE}")
    return canonical_user_id(value)


def path_id(request: web.Request, name: str = "id") -> str:
    """A UUID path parameter (§2), or BadRequest naming it."""
    value = request.match_info[name]
    if not is_id(value):
        raise BadRequest(f"{name} must be a lowercase UUID")
    return value


def int_query(request: web.Request, name: str, default: int | None, low: int,
              high: int | None) -> int | None:
    """An integer query parameter within `[low, high]`, or BadRequest naming it."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None
    if value < low or (high is not None and value > high):
        raise BadRequest(f"{name} out of range")
    return value
