"""`/users/me` and `/ws-tickets` (PROTOCOL.md §7): the caller, and its WebSocket tickets."""

from __future__ import annotations

from aiohttp import web

from hubbub.domain.clock import format_optional, format_time
from hubbub.services.context import Actor
from hubbub.transport.http.api import API, Api, caller
from hubbub.transport.http.bodies import json_response


async def users_me(request: web.Request, api: Api, actor: Actor) -> web.Response:
    user = await api.users.get(actor.user_id)
    assert user is not None
    return json_response({"id": user.id, "name": user.name,
                          "created_at": format_time(user.created_at),
                          "last_seen": format_optional(user.last_seen)})


async def create_ws_ticket(request: web.Request) -> web.Response:
    """§1, §7: a single-use `/ws?ticket=` valid 30 s, so a browser keeps its JWT out of URLs.

    Not `authed`: the ticket keeps the token's `exp`, which still closes the socket (4001).
    """
    api = request.app[API]
    identity, _ = await caller(api, request)
    ticket = await api.tickets.issue(identity)
    response = json_response({"ticket": ticket.value,
                              "expires_at": format_time(ticket.expires_at)}, 201)
    response.headers["Cache-Control"] = "no-store"
    return response
