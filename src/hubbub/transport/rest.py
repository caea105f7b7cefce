"""The HTTP API of PROTOCOL.md §7 and the health checks (metrics: metrics_http.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
from aiohttp import web
from msgspec import Meta

from hubbub.bus.base import BusUnavailable
from hubbub.domain.clock import format_optional, format_time
from hubbub.domain.errors import BadRequest, ChatError, Code
from hubbub.domain.limits import (
    HISTORY_LIMIT_DEFAULT,
    HISTORY_LIMIT_MAX,
    MAX_INITIAL_MEMBERS,
    MAX_RAW_NAME_CHARS,
)
from hubbub.domain.models import Conversation, Member, User
from hubbub.domain.tokens import Identity
from hubbub.logs import get_logger
from hubbub.protocol.objects import (
    Attachments,
    ClientMessageId,
    Content,
    ConversationObject,
    Id,
    Kind,
    is_id,
)
from hubbub.protocol.objects import Role as RoleName
from hubbub.services.context import Actor
from hubbub.services.views import conversation_object, message_object, summary_object
from hubbub.storage.errors import StoreUnavailable
from hubbub.transport.auth import authenticate, bearer_token
from hubbub.transport.http import (
    error_for,
    error_response,
    json_response,
    read_body,
    serves_websocket,
)
from hubbub.transport.server import SERVER, Server

log = get_logger("hubbub.http")

Handler = Callable[[web.Request, Server, Actor], Awaitable[web.StreamResponse]]


class CreateConversation(msgspec.Struct, frozen=True):
    kind: Kind
    name: Annotated[str, Meta(max_length=MAX_RAW_NAME_CHARS)] | None = None
    member_ids: Annotated[list[Id], Meta(max_length=MAX_INITIAL_MEMBERS)] = msgspec.field(
        default_factory=list)


class PutMember(msgspec.Struct, frozen=True):
    role: RoleName


class PostMessage(msgspec.Struct, frozen=True):
    content: Content = ""
    parent_id: Id | None = None
    attachments: Attachments = msgspec.field(default_factory=list)
    client_message_id: ClientMessageId | None = None


def routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    api = "/api/v1"
    app.router.add_get(f"{api}/users/me", authed(users_me))
    app.router.add_post(f"{api}/ws-tickets", create_ws_ticket)
    app.router.add_get(f"{api}/conversations", authed(list_conversations))
    app.router.add_post(f"{api}/conversations", authed(create_conversation))
    app.router.add_get(f"{api}/conversations/{{id}}", authed(get_conversation))
    app.router.add_get(f"{api}/conversations/{{id}}/members", authed(list_members))
    app.router.add_put(f"{api}/conversations/{{id}}/members/{{user_id}}", authed(put_member))
    app.router.add_delete(f"{api}/conversations/{{id}}/members/{{user_id}}",
                          authed(remove_member))
    app.router.add_get(f"{api}/conversations/{{id}}/messages", authed(list_messages))
    app.router.add_post(f"{api}/conversations/{{id}}/messages", authed(post_message))


@web.middleware
def errors_middleware(request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                      ) -> Awaitable[web.StreamResponse]:
    """ChatErrors become §7 JSON bodies; anything unexpected is a 500 without details.

    `/ws` does this itself (`failure_response`): a frame of this middleware would stay for
    the whole life of every WebSocket connection.
    """
    if serves_websocket(request):
        return handler(request)
    return _errors(request, handler)


async def _errors(request: web.Request,
                  handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                  ) -> web.StreamResponse:
    server: Server = request.app[SERVER]
    try:
        return await handler(request)
    except Exception as exc:
        return failure_response(server, request, exc)


def failure_response(server: Server, request: web.Request,
                     exc: Exception) -> web.StreamResponse:
    """The §7 response for an exception a handler let through (call it in `except`).

    Raises:
        web.HTTPException: `exc` itself when it is not an error (a redirect, say).
    """
    if isinstance(exc, ChatError):
        server.metrics.count_error(exc.code)
        return error_for(exc)
    if isinstance(exc, web.HTTPException):
        if exc.status >= 400:
            code = {404: Code.NOT_FOUND, 405: Code.BAD_REQUEST,
                    413: Code.PAYLOAD_TOO_LARGE}.get(exc.status, Code.BAD_REQUEST)
            return error_response(exc.status, code, exc.reason)
        raise exc
    log.exception("http.failed", method=request.method, path=request.path)
    server.metrics.count_error(Code.INTERNAL_ERROR)
    return error_response(500, Code.INTERNAL_ERROR, "internal error")


def authed(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Wrap a handler that needs the caller: a bearer token, verified, its user registered."""

    async def wrapper(request: web.Request) -> web.StreamResponse:
        server: Server = request.app[SERVER]
        _, user = await _caller(server, request)
        return await handler(request, server, Actor(user.id, user.name))

    return wrapper


async def _caller(server: Server, request: web.Request) -> tuple[Identity, User]:
    """Verify the bearer token, take an "other action" from the user's bucket, then
    register or refresh the user: that upsert is a database write, which a request the
    limiter refuses must not cost.

    Raises:
        Unauthorized: no valid token. RateLimited: the user's bucket is empty.
    """
    identity = authenticate(server.verifier, bearer_token(request))
    await server.limiter.hit("o:" + identity.user_id, server.settings.other_rule)
    return identity, await server.users.seen(identity)


def path_id(request: web.Request, name: str = "id") -> str:
    """A UUID path parameter (§2), or BadRequest naming it."""
    value = request.match_info[name]
    if not is_id(value):
        raise BadRequest(f"{name} must be a lowercase UUID")
    return value


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """503 only for what keeps this instance from serving: its database. (A SIGTERM closes
    the listener before anything else, so the next check is refused, not answered.)

    The shared Redis is down for every instance at once, and taking them all out of the
    load balancer would stop a service that still works (sends are stored and
    acknowledged, clients repair the lost events with SyncMessages): a bus that does not
    answer is `200 {"status": "degraded", "degraded": ["bus"]}`, for alerts to act on.
    """
    server: Server = request.app[SERVER]
    try:
        await server.database.ping()
    except StoreUnavailable:
        return json_response({"status": "unavailable", "failed": ["database"]}, 503)
    try:
        await server.bus.ping()
    except BusUnavailable:
        return json_response({"status": "degraded", "degraded": ["bus"]})
    return json_response({"status": "ok"})


async def create_ws_ticket(request: web.Request) -> web.Response:
    """§1, §7: a single-use `/ws?ticket=` valid 30 s, so a browser keeps its JWT out of URLs.

    Not `authed`: the ticket keeps the token's `exp`, which still closes the socket (4001).
    """
    server: Server = request.app[SERVER]
    identity, _ = await _caller(server, request)
    ticket = await server.tickets.issue(identity)
    response = json_response({"ticket": ticket.value,
                              "expires_at": format_time(ticket.expires_at)}, 201)
    response.headers["Cache-Control"] = "no-store"
    return response


async def users_me(request: web.Request, server: Server, actor: Actor) -> web.Response:
    user = await server.users.get(actor.user_id)
    assert user is not None
    return json_response({"id": user.id, "name": user.name,
                          "created_at": format_time(user.created_at),
                          "last_seen": format_optional(user.last_seen)})


async def list_conversations(request: web.Request, server: Server, actor: Actor) -> web.Response:
    summaries = await server.conversations.list_for(actor)
    return json_response({"conversations": [summary_object(s) for s in summaries]})


async def create_conversation(request: web.Request, server: Server, actor: Actor
                              ) -> web.Response:
    body = await read_body(request, CreateConversation, server.settings.max_body_bytes)
    conversation, created = await server.conversations.create(
        actor, body.kind, body.name, body.member_ids
    )
    role = await server.conversations.role_of(actor, conversation.id)
    return json_response(await _caller_view(server, actor, conversation, role),
                         201 if created else 200)


async def get_conversation(request: web.Request, server: Server, actor: Actor) -> web.Response:
    conversation, role = await server.conversations.get(actor, path_id(request))
    return json_response(await _caller_view(server, actor, conversation, role))


async def _caller_view(server: Server, actor: Actor, conversation: Conversation,
                       role: RoleName | None) -> ConversationObject:
    """§2: a member sees its role, unread count and last message; others see neither."""
    summary = (None if role is None
               else await server.conversations.summary(actor, conversation.id))
    if summary is None:
        return conversation_object(conversation, role)
    return summary_object(summary)


async def list_members(request: web.Request, server: Server, actor: Actor) -> web.Response:
    """`online` is shown only for members who accepted (docs/DECISIONS.md, "Consent"): an
    invited member is listed `accepted: false, online: false` whether connected or not."""
    members = await server.conversations.members(actor, path_id(request))
    online = await server.presence.visible_online(members)
    return json_response({"members": [
        {**_member_object(m), "online": m.user_id in online} for m in members
    ]})


def _member_object(member: Member) -> dict[str, Any]:
    return {"user_id": member.user_id, "user_name": member.user_name, "role": member.role,
            "joined_at": format_time(member.joined_at), "accepted": member.accepted}


async def put_member(request: web.Request, server: Server, actor: Actor) -> web.Response:
    body = await read_body(request, PutMember, server.settings.max_body_bytes)
    member, created = await server.conversations.put_member(
        actor, path_id(request), path_id(request, "user_id"), body.role
    )
    return json_response(_member_object(member), 201 if created else 200)


async def remove_member(request: web.Request, server: Server, actor: Actor) -> web.Response:
    await server.conversations.remove_member(actor, path_id(request),
                                             path_id(request, "user_id"))
    return web.Response(status=204)


async def list_messages(request: web.Request, server: Server, actor: Actor) -> web.Response:
    before = _int_query(request, "before", None, 0, 2**63 - 1)  # a BIGINT cursor
    limit = _int_query(request, "limit", HISTORY_LIMIT_DEFAULT, 1, HISTORY_LIMIT_MAX)
    assert limit is not None
    page = await server.messages.history(actor, path_id(request), before, limit)
    return json_response({
        "messages": [message_object(m) for m in page.messages],
        "has_more": page.has_more,
        "next_before": page.messages[0].seq if page.messages else None,
    })


async def post_message(request: web.Request, server: Server, actor: Actor) -> web.Response:
    body = await read_body(request, PostMessage, server.settings.max_body_bytes)
    await server.limiter.hit("s:" + actor.user_id, server.settings.send_rule)
    outcome = await server.messages.send(
        actor, path_id(request), body.content, body.parent_id, body.attachments,
        body.client_message_id,
    )
    return json_response(message_object(outcome.message), 201 if outcome.created else 200)


def _int_query(request: web.Request, name: str, default: int | None, low: int,
               high: int | None) -> int | None:
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
