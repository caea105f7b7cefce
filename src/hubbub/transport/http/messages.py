"""`/conversations/{id}/messages` (PROTOCOL.md §7): the history page, and sending as the
caller, on the same use cases as FetchHistory and SendMessage."""

from __future__ import annotations

import msgspec
from aiohttp import web

from hubbub.domain.errors import BadRequest
from hubbub.domain.limits import HISTORY_LIMIT_DEFAULT, HISTORY_LIMIT_MAX
from hubbub.protocol.objects import (
    Attachments,
    ClientMessageId,
    Content,
    Id,
    Mentions,
    is_id,
)
from hubbub.services.context import Actor
from hubbub.services.views import message_object
from hubbub.transport.http.api import Api, int_query, path_id
from hubbub.transport.http.bodies import json_response, read_body


class PostMessage(msgspec.Struct, frozen=True):
    content: Content = ""
    parent_id: Id | None = None
    attachments: Attachments = msgspec.field(default_factory=list)
    client_message_id: ClientMessageId | None = None
    mentions: Mentions = msgspec.field(default_factory=list)


async def list_messages(request: web.Request, api: Api, actor: Actor) -> web.Response:
    before = int_query(request, "before", None, 0, 2**63 - 1)  # a BIGINT cursor
    limit = int_query(request, "limit", HISTORY_LIMIT_DEFAULT, 1, HISTORY_LIMIT_MAX)
    assert limit is not None
    page = await api.messages.history(actor, path_id(request), before, limit,
                                      parent_query(request))
    return json_response({
        "messages": [message_object(m) for m in page.messages],
        "has_more": page.has_more,
        "next_before": page.messages[0].seq if page.messages else None,
    })


def parent_query(request: web.Request) -> str | None:
    """`?parent_id=`: a thread's replies only (PROTOCOL.md §7); an id of §2 or nothing."""
    value = request.query.get("parent_id")
    if value is not None and not is_id(value):
        raise BadRequest("parent_id must be a message id - at `parent_id`")
    return value


async def post_message(request: web.Request, api: Api, actor: Actor) -> web.Response:
    body = await read_body(request, PostMessage, api.max_body_bytes)
    await api.limiter.hit("s:" + actor.user_id, api.send_rule)
    sent = await api.messages.send(
        actor, path_id(request), body.content, body.parent_id, body.attachments,
        body.client_message_id, body.mentions,
    )
    return json_response(sent.view, 201 if sent.created else 200)
