"""The handlers of the server API (PROTOCOL.md §8). Each decodes its request, calls the
use case — the same services the user doors call, so every change is broadcast the same
way — and answers with the §7 JSON shapes, errors included (rest.errors_middleware)."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from hubbub.bus.envelope import UserDisconnected
from hubbub.delivery.hub import Hub
from hubbub.domain.errors import BadRequest, ChatError, Code, NotFound
from hubbub.domain.profile import MAX_METADATA_DEPTH
from hubbub.services.context import Actor
from hubbub.services.views import conversation_object, message_object
from hubbub.transport.http.api import path_id, path_user_id
from hubbub.transport.http.bodies import json_response, read_body
from hubbub.transport.server_api import webhooks
from hubbub.transport.server_api.auth import SERVER_API, ServerApi, backend_only
from hubbub.transport.server_api.bodies import (
    IDEMPOTENCY_KEY,
    MAX_IDEMPOTENCY_KEY,
    CreateConversation,
    PostMessage,
    PutMember,
    PutUser,
    member_view,
    user_view,
)
from hubbub.transport.websocket.connections import Connections

SERVER_PREFIX = "/api/v1/server"


def install(app: web.Application, base: str = "") -> None:
    """Add the routes under `base` (HUBBUB_BASE_PATH); their parts are the app's
    `SERVER_API`, set by app.py's doors."""
    add = app.router
    prefix = base + SERVER_PREFIX
    add.add_put(f"{prefix}/users/{{user_id}}", backend_only(put_user))
    add.add_get(f"{prefix}/users/{{user_id}}", backend_only(get_user))
    add.add_delete(f"{prefix}/users/{{user_id}}", backend_only(erase_user))
    add.add_post(f"{prefix}/users/{{user_id}}/disconnect", backend_only(disconnect))
    add.add_post(f"{prefix}/conversations", backend_only(create_conversation))
    add.add_put(f"{prefix}/conversations/{{id}}/members/{{user_id}}", backend_only(put_member))
    add.add_delete(f"{prefix}/conversations/{{id}}/members/{{user_id}}",
                   backend_only(remove_member))
    add.add_post(f"{prefix}/conversations/{{id}}/messages", backend_only(post_message))
    add.add_get(f"{prefix}/conversations/{{id}}/presence", backend_only(presence))
    add.add_get(f"{prefix}/webhooks/dead-letters", backend_only(webhooks.list_dead_letters))
    add.add_post(f"{prefix}/webhooks/dead-letters/replay",
                 backend_only(webhooks.replay_dead_letters))
    # Last: any other path or method under the prefix, so that without keys the whole API
    # is a 404 (not a 405 that would show which paths exist).
    add.add_route("*", f"{prefix}/{{tail:.*}}", backend_only(unknown))


def close_user(hub: Hub, connections: Connections, event: UserDisconnected) -> None:
    """The bus says to close a user's connections (disconnect or erase, on any instance):
    close those of this instance."""
    for connection in hub.connections_of(event.user_id):
        connections.close(connection, event.code, event.reason)


async def unknown(request: web.Request) -> web.Response:
    raise NotFound("no such server API path or method")


def _parts(request: web.Request) -> ServerApi:
    return request.app[SERVER_API]


async def put_user(request: web.Request) -> web.Response:
    api = _parts(request)
    try:
        body = await read_body(request, PutUser, api.max_body_bytes)
    except RecursionError:  # msgspec's own bound on nesting, far past ours
        raise BadRequest(f"metadata nested deeper than {MAX_METADATA_DEPTH} levels - at "
                         "`$.metadata`") from None
    user, created = await api.accounts.put_user(path_user_id(request), body.name,
                                            body.avatar_url, body.metadata)
    return json_response(user_view(user), 201 if created else 200)


async def get_user(request: web.Request) -> web.Response:
    api = _parts(request)
    return json_response(user_view(await api.accounts.get_user(path_user_id(request))))


class BusDown(ChatError):
    """The bus cannot carry the close to the other instances now: refused before anything
    changes, so that the backend retries instead of believing it done."""

    code = Code.UNAVAILABLE
    http_status = 503


def _require_bus(api: ServerApi) -> None:
    if not api.bus_healthy():
        raise BusDown("the bus between instances is down; retry")


async def erase_user(request: web.Request) -> web.Response:
    api = _parts(request)
    _require_bus(api)
    await api.accounts.erase(path_user_id(request))
    return web.Response(status=204)


async def disconnect(request: web.Request) -> web.Response:
    api = _parts(request)
    _require_bus(api)
    user = await api.accounts.get_user(path_user_id(request))
    api.accounts.disconnect(user.id)
    return web.Response(status=204)


async def create_conversation(request: web.Request) -> web.Response:
    api = _parts(request)
    key = _idempotency_key(request)
    body = await read_body(request, CreateConversation, api.max_body_bytes)
    conversation, created = await api.accounts.create_conversation(
        body.kind, body.name, body.owner_id, body.member_ids, key, msgspec.json.encode(body))
    return json_response(conversation_object(conversation), 201 if created else 200)


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get(IDEMPOTENCY_KEY)
    if key is None:
        return None
    if not 0 < len(key) <= MAX_IDEMPOTENCY_KEY or not all(" " < ch < "\x7f" for ch in key):
        raise BadRequest(f"{IDEMPOTENCY_KEY} must be 1-{MAX_IDEMPOTENCY_KEY} visible ASCII "
                         f"characters - at header `{IDEMPOTENCY_KEY}`")
    return key


async def put_member(request: web.Request) -> web.Response:
    api = _parts(request)
    conversation_id, user_id = path_id(request), path_user_id(request)
    body = await read_body(request, PutMember, api.max_body_bytes)
    conversation = await api.conversations.require_exists(conversation_id)
    if conversation.kind == "direct":
        raise BadRequest("the members of a direct conversation are fixed")
    await api.accounts.ensure_users([user_id], "user_id")
    member, created = await api.conversations.apply_role(conversation_id, user_id,
                                                            body.role)
    return json_response(member_view(member), 201 if created else 200)


async def remove_member(request: web.Request) -> web.Response:
    api = _parts(request)
    conversation_id, user_id = path_id(request), path_user_id(request)
    await api.conversations.require_exists(conversation_id)
    if not await api.conversations.end_membership(conversation_id, user_id):
        raise NotFound("not a member - at `user_id`")
    return web.Response(status=204)


async def post_message(request: web.Request) -> web.Response:
    api = _parts(request)
    conversation_id = path_id(request)
    body = await read_body(request, PostMessage, api.max_body_bytes)
    if body.sender_id is None:
        outcome = await api.messages.post_system(
            conversation_id, body.content, body.parent_id, body.attachments,
            body.client_message_id)
    else:
        sender = await api.accounts.get_user(body.sender_id, "$.sender_id")
        outcome = await api.messages.send(
            Actor(sender.id, sender.name), conversation_id, body.content, body.parent_id,
            body.attachments, body.client_message_id)
    return json_response(message_object(outcome.message), 201 if outcome.created else 200)


async def presence(request: web.Request) -> web.Response:
    api = _parts(request)
    members = await api.accounts.presence(path_id(request))
    result: list[dict[str, Any]] = [{"user_id": uid, "online": online}
                                    for uid, online in members]
    return json_response({"members": result,
                          "online": [m["user_id"] for m in result if m["online"]]})
