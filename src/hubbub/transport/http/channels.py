"""`/channels` (PROTOCOL.md §7, added): the directory of public channels to join."""

from __future__ import annotations

from aiohttp import web

from hubbub.services.context import Actor
from hubbub.services.directory import DEFAULT_PAGE, MAX_PAGE
from hubbub.transport.http.api import Api, int_query
from hubbub.transport.http.bodies import json_response


async def list_channels(request: web.Request, api: Api, actor: Actor) -> web.Response:
    limit = int_query(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    assert limit is not None
    cursor = request.query.get("cursor") or None
    page = await api.directory.page(actor, request.query.get("query", ""), limit, cursor)
    return json_response(page)
