"""The server API's dead letters (PROTOCOL.md §8, docs/WEBHOOKS.md): what `hubbub webhooks
dead-letters` and `replay` do, for a backend that cannot run the command on the database's
host. Both call services/dead_letters.py, as the command does."""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web
from msgspec import Meta

from hubbub.domain.errors import BadRequest
from hubbub.services.dead_letters import MAX_PAGE, MAX_REPLAY_IDS
from hubbub.transport.http.api import int_query
from hubbub.transport.http.bodies import json_response, read_body
from hubbub.transport.server_api.auth import SERVER_API

EventId = Annotated[str, Meta(min_length=1, max_length=40)]


class Replay(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`{"ids": [...]}` or `{"all": true}`: exactly one of them."""

    ids: Annotated[list[EventId], Meta(max_length=MAX_REPLAY_IDS)] | None = None
    all: bool = False


async def list_dead_letters(request: web.Request) -> web.Response:
    """`?limit=` (1–500, 100) and `?cursor=` (the `next` of the page before)."""
    api = request.app[SERVER_API]
    limit = int_query(request, "limit", 100, 1, MAX_PAGE)
    assert limit is not None
    page = await api.dead_letters.page(limit, request.query.get("cursor") or None)
    return json_response(msgspec.to_builtins(page))


async def replay_dead_letters(request: web.Request) -> web.Response:
    api = request.app[SERVER_API]
    body = await read_body(request, Replay, api.max_body_bytes)
    if (body.ids is None) != body.all:
        raise BadRequest("give `ids` or `\"all\": true`, not both or neither - at `$.ids`")
    replayed = await api.dead_letters.replay(None if body.all else body.ids)
    return json_response({"replayed": replayed})
