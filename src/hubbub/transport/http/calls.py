"""The call history over HTTP: `GET /api/v1/conversations/{id}/calls` (docs/DECISIONS.md).

An addition to PROTOCOL.md §7: finished, missed and ongoing calls of a conversation that
the caller took part in, newest first, so a client can show them beside the messages.
"""

from __future__ import annotations

from aiohttp import web

from hubbub.domain.clock import format_time, parse_time
from hubbub.domain.errors import BadRequest
from hubbub.domain.limits import HISTORY_LIMIT_DEFAULT, HISTORY_LIMIT_MAX
from hubbub.services.context import Actor
from hubbub.services.views import call_object
from hubbub.transport.http.api import Api, path_id
from hubbub.transport.http.bodies import json_response

# The same page bounds as FetchHistory (§3).
DEFAULT_LIMIT = HISTORY_LIMIT_DEFAULT
MAX_LIMIT = HISTORY_LIMIT_MAX


async def list_calls(request: web.Request, api: Api, actor: Actor) -> web.Response:
    """`?before=` (RFC 3339, exclusive: a call's `created_at`) and `?limit=` (1–100)."""
    before = _before(request.query.get("before"))
    limit = _limit(request.query.get("limit"))
    calls = await api.calls.history(actor, path_id(request), before, limit + 1)
    page = calls[:limit]
    return json_response({
        "calls": [call_object(call) for call in page],
        "has_more": len(calls) > limit,
        "next_before": format_time(page[-1].created_at) if page else None,
    })


def _before(raw: str | None) -> int | None:
    if not raw:
        return None
    try:
        return parse_time(raw)
    except ValueError:
        raise BadRequest("before must be an RFC 3339 time") from None


def _limit(raw: str | None) -> int:
    if not raw:
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest("limit must be an integer") from None
    if not 1 <= value <= MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
    return value
