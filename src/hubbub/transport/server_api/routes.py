"""The handlers of the server API (PROTOCOL.md §8). Each decodes its request, calls the
use case — the same services the user doors call, so every change is broadcast the same
way — and answers with the §7 JSON shapes, errors included (rest.errors_middleware)."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from hubbub.domain.errors import BadRequest, ChatError, NotFound
from hubbub.domain.profile import MAX_METADATA_DEPTH
from hubbub.services.accounts import AccountService
from hubbub.services.context import Actor
from hubbub.services.events import Events
from hubbub.services.views import conversation_object, message_object
from hubbub.storage import Stores
from hubbub.transport.http import json_response, read_body
from hubbub.transport.rest import path_id
from hubbub.transport.server import SERVER, Server
from hubbub.transport.server_api.auth import backend_only
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

ACCOUNTS = web.AppKey("accounts", AccountService)
PREFIX = "/api/v1/server"


def install(app: web.Application, stores: web.AppKey[Stores]) -> None:
    """Add the routes; once the app has started (its server and `stores` set), build the
    service and close connections the bus says to close."""
    add = app.router
    add.add_put(f"{PREFIX}/users/{{user_id}}", backend_only(put_user))
    add.add_get(f"{PREFIX}/users/{{user_id}}", backend_only(get_user))
    add.add_delete(f"{PREFIX}/users/{{user_id}}", backend_only(erase_user))
    add.add_post(f"{PREFIX}/users/{{user_id}}/disconnect", backend_only(disconnect))
    add.add_post(f"{PREFIX}/conversations", backend_only(create_conversation))
    add.add_put(f"{PREFIX}/conversations/{{id}}/members/{{user_id}}", backend_only(put_member))
    add.add_delete(f"{PREFIX}/conversations/{{id}}/members/{{user_id}}",
                   backend_only(remove_member))
    add.add_post(f"{PREFIX}/conversations/{{id}}/messages", backend_only(post_message))
    add.add_get(f"{PREFIX}/conversations/{{id}}/presence", backend_only(presence))
    # Last: any other path or method under the prefix, so that without keys the whole API
    # is a 404 (not a 405 that would show which paths exist).
    add.add_route("*", f"{PREFIX}/{{tail:.*}}", backend_only(unknown))

    async def start(app: web.Application) -> None:
        server, opened = app[SERVER], app[stores]
        app[ACCOUNTS] = AccountService(
            opened.users, opened.members, opened.messages, opened.idempotency,
            server.conversations, server.messages, server.presence, Events(server.bus))
        server.hub.add_disconnect_listener(
            lambda event: _close_user(server, event.user_id, event.code, event.reason))

    app.on_startup.append(start)  # after the lifespan's start (aiohttp runs that first)


async def unknown(request: web.Request) -> web.Response:
    raise NotFound("no such server API path or method")


def _close_user(server: Server, user_id: str, code: int, reason: str) -> None:
    for connection in server.hub.connections_of(user_id):
        server.close_connection(connection, code, reason)


def _parts(request: web.Request) -> tuple[Server, AccountService]:
    return request.app[SERVER], request.app[ACCOUNTS]


async def put_user(request: web.Request) -> web.Response:
    server, accounts = _parts(request)
    try:
        body = await read_body(request, PutUser, server.settings.max_body_bytes)
    except RecursionError:  # msgspec's own bound on nesting, far past ours
        raise BadRequest(f"metadata nested deeper than {MAX_METADATA_DEPTH} levels - at "
                         "`$.metadata`") from None
    user, created = await accounts.put_user(path_id(request, "user_id"), body.name,
                                            body.avatar_url, body.metadata)
    return json_response(user_view(user), 201 if created else 200)


async def get_user(request: web.Request) -> web.Response:
    _, accounts = _parts(request)
    return json_response(user_view(await accounts.get_user(path_id(request, "user_id"))))


class BusDown(ChatError):
    """The bus cannot carry the close to the other instances now: refused before anything
    changes, so that the backend retries instead of believing it done."""

    code = "UNAVAILABLE"
    http_status = 503


def _require_bus(server: Server) -> None:
    if not server.bus.healthy:
        raise BusDown("the bus between instances is down; retry")


async def erase_user(request: web.Request) -> web.Response:
    server, accounts = _parts(request)
    _require_bus(server)
    await accounts.erase(path_id(request, "user_id"))
    return web.Response(status=204)


async def disconnect(request: web.Request) -> web.Response:
    server, accounts = _parts(request)
    _require_bus(server)
    user = await accounts.get_user(path_id(request, "user_id"))
    accounts.disconnect(user.id)
    return web.Response(status=204)


async def create_conversation(request: web.Request) -> web.Response:
    server, accounts = _parts(request)
    key = _idempotency_key(request)
    body = await read_body(request, CreateConversation, server.settings.max_body_bytes)
    conversation, created = await accounts.create_conversation(
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
    server, accounts = _parts(request)
    conversation_id, user_id = path_id(request), path_id(request, "user_id")
    body = await read_body(request, PutMember, server.settings.max_body_bytes)
    conversation = await server.conversations.require_exists(conversation_id)
    if conversation.kind == "direct":
        raise BadRequest("the members of a direct conversation are fixed")
    await accounts.ensure_users([user_id], "user_id")
    member, created = await server.conversations.apply_role(conversation_id, user_id,
                                                            body.role)
    return json_response(member_view(member), 201 if created else 200)


async def remove_member(request: web.Request) -> web.Response:
    server, _ = _parts(request)
    conversation_id, user_id = path_id(request), path_id(request, "user_id")
    await server.conversations.require_exists(conversation_id)
    if not await server.conversations.end_membership(conversation_id, user_id):
        raise NotFound("not a member - at `user_id`")
    return web.Response(status=204)


async def post_message(request: web.Request) -> web.Response:
    server, accounts = _parts(request)
    conversation_id = path_id(request)
    body = await read_body(request, PostMessage, server.settings.max_body_bytes)
    if body.sender_id is None:
        outcome = await server.messages.post_system(
            conversation_id, body.content, body.parent_id, body.attachments,
            body.client_message_id)
    else:
        sender = await accounts.get_user(body.sender_id, "$.sender_id")
        outcome = await server.messages.send(
            Actor(sender.id, sender.name), conversation_id, body.content, body.parent_id,
            body.attachments, body.client_message_id)
    return json_response(message_object(outcome.message), 201 if outcome.created else 200)


async def presence(request: web.Request) -> web.Response:
    _, accounts = _parts(request)
    members = await accounts.presence(path_id(request))
    result: list[dict[str, Any]] = [{"user_id": uid, "online": online}
                                    for uid, online in members]
    return json_response({"members": result,
                          "online": [m["user_id"] for m in result if m["online"]]})
