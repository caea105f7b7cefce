"""`/conversations` and `/conversations/{id}` (PROTOCOL.md §7)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web
from msgspec import Meta

from hubbub.domain.limits import MAX_INITIAL_MEMBERS, MAX_RAW_NAME_CHARS
from hubbub.protocol.objects import Kind, UserId
from hubbub.services.context import Actor
from hubbub.services.views import summary_object
from hubbub.transport.http.api import Api, path_id
from hubbub.transport.http.bodies import json_response, read_body


class CreateConversation(msgspec.Struct, frozen=True):
    kind: Kind
    name: Annotated[str, Meta(max_length=MAX_RAW_NAME_CHARS)] | None = None
    member_ids: Annotated[list[UserId], Meta(max_length=MAX_INITIAL_MEMBERS)] = msgspec.field(
        default_factory=list)


async def list_conversations(request: web.Request, api: Api, actor: Actor) -> web.Response:
    summaries = await api.conversations.list_for(actor)
    return json_response({"conversations": [summary_object(s) for s in summaries]})


async def create_conversation(request: web.Request, api: Api, actor: Actor) -> web.Response:
    body = await read_body(request, CreateConversation, api.max_body_bytes)
    conversation, created = await api.conversations.create(
        actor, body.kind, body.name, body.member_ids
    )
    role = await api.conversations.role_of(actor, conversation.id)
    return json_response(await api.conversations.view(actor, conversation, role),
                         201 if created else 200)


async def get_conversation(request: web.Request, api: Api, actor: Actor) -> web.Response:
    conversation, role = await api.conversations.get(actor, path_id(request))
    return json_response(await api.conversations.view(actor, conversation, role))
