"""The HTTP routes of PROTOCOL.md §7 and §8, declared once for the OpenAPI document.

tests/contract_docs compares this table with the aiohttp app's router both ways, so a route
added to the app and not here (or the reverse) fails the build."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from hubbub.contract import shapes
from hubbub.protocol.objects import ConversationObject, MessageObject
from hubbub.services import directory
from hubbub.services.dead_letters import MAX_PAGE, DeadLetterPage
from hubbub.transport.http import conversations as user_conversations
from hubbub.transport.http import members as user_members
from hubbub.transport.http import messages as user_messages
from hubbub.transport.server_api import bodies
from hubbub.transport.server_api import webhooks as server_webhooks

Door = Literal["public", "user", "server"]
USER = "/api/v1"
SERVER = "/api/v1/server"
# Served by the app but not part of the REST contract: the WebSocket (asyncapi.json), the
# bundled web client, Prometheus' text, the documents themselves, and the server API's
# catch-all that answers 404 for any other path under its prefix.
NOT_DOCUMENTED = frozenset({
    ("GET", "/ws"), ("GET", "/"), ("GET", "/static/{name}"), ("GET", "/metrics"),
    ("GET", "/asyncapi.json"), ("GET", "/openapi.json"), ("*", SERVER + "/{tail}"),
})


@dataclass(frozen=True)
class Query:
    name: str
    schema: dict[str, Any]
    description: str


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    door: Door
    summary: str
    responses: dict[int, Any]  # status -> the body's type, None for no body
    body: Any = None
    query: tuple[Query, ...] = ()
    headers: tuple[Query, ...] = ()
    errors: tuple[int, ...] = field(default=())


_CURSOR = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
_LIMIT = {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}
_PAGE = (Query("before", _CURSOR, "only messages with a smaller `seq`"),
         Query("limit", _LIMIT, "at most this many messages"))
_THREAD = Query("parent_id", {"type": "string", "format": "uuid"},
                "only the replies of this message (its thread)")
_CALL_PAGE = (Query("before", {"type": "string", "format": "date-time"},
                    "only calls created before this time (RFC 3339)"),
              Query("limit", _LIMIT, "at most this many calls"))
_IDEMPOTENCY = Query(bodies.IDEMPOTENCY_KEY,
                     {"type": "string", "minLength": 1,
                      "maxLength": bodies.MAX_IDEMPOTENCY_KEY, "pattern": "^[!-~]+$"},
                     "the same key and body answer 200 with the first request's result")
_DEAD_PAGE = (
    Query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 100},
          "at most this many events"),
    Query("cursor", {"type": "string", "pattern": "^[0-9]{1,19}$"},
          "the `next` of the page before"))
_DIRECTORY = (
    Query("query", {"type": "string", "maxLength": directory.MAX_QUERY_CHARS},
          "only channels whose name contains this, ignoring case"),
    Query("limit", {"type": "integer", "minimum": 1, "maximum": directory.MAX_PAGE,
                    "default": directory.DEFAULT_PAGE}, "at most this many channels"),
    Query("cursor", {"type": "string", "maxLength": directory.MAX_CURSOR_CHARS},
          "the `next_cursor` of the page before"))
_C = f"{USER}/conversations"
_SC = f"{SERVER}/conversations"

ROUTES: tuple[Route, ...] = (
    Route("GET", "/healthz", "public", "Liveness", {200: shapes.Health}),
    Route("GET", "/readyz", "public", "Readiness: the database (and the bus, degraded)",
          {200: shapes.Health, 503: shapes.Health}),
    Route("GET", f"{USER}/users/me", "user", "The caller", {200: shapes.Me}),
    Route("POST", f"{USER}/ws-tickets", "user", "A single-use WebSocket ticket (30 s)",
          {201: shapes.Ticket}),
    Route("GET", _C, "user", "The caller's conversations, newest activity first",
          {200: shapes.ConversationList}),
    Route("GET", f"{USER}/channels", "user",
          "The public channels to join, by name (the directory)",
          {200: directory.ChannelPage}, query=_DIRECTORY),
    Route("POST", _C, "user", "Create a conversation (the caller owns it)",
          {200: ConversationObject, 201: ConversationObject},
          body=user_conversations.CreateConversation, errors=(403, 404, 409, 413)),
    Route("GET", _C + "/{id}", "user", "One conversation",
          {200: ConversationObject}, errors=(403, 404)),
    Route("GET", _C + "/{id}/members", "user", "The members",
          {200: shapes.MemberList}, errors=(403, 404)),
    Route("PUT", _C + "/{id}/members/{user_id}", "user", "Add a member or change a role",
          {200: shapes.MemberObject, 201: shapes.MemberObject}, body=user_members.PutMember,
          errors=(403, 404, 409, 413)),
    Route("DELETE", _C + "/{id}/members/{user_id}", "user", "Remove a member (self: leave)",
          {204: None}, errors=(403, 404, 409)),
    Route("PATCH", _C + "/{id}/membership", "user",
          "The caller's own settings (mute, pin), as UpdateMembership",
          {200: ConversationObject}, body=user_members.PatchMembership,
          errors=(403, 404, 413)),
    Route("GET", _C + "/{id}/messages", "user", "A page of history, as FetchHistory",
          {200: shapes.MessagePage}, query=(*_PAGE, _THREAD), errors=(403, 404)),
    Route("POST", _C + "/{id}/messages", "user", "Send as the caller, as SendMessage",
          {200: MessageObject, 201: MessageObject}, body=user_messages.PostMessage,
          errors=(403, 404, 409, 413)),
    Route("GET", _C + "/{id}/calls", "user", "The call history, newest first",
          {200: shapes.CallPage}, query=_CALL_PAGE, errors=(403, 404)),
    Route("PUT", f"{SERVER}/users/{{user_id}}", "server", "Create or update a user",
          {200: shapes.ServerUser, 201: shapes.ServerUser}, body=bodies.PutUser,
          errors=(413,)),
    Route("GET", f"{SERVER}/users/{{user_id}}", "server", "A user",
          {200: shapes.ServerUser}),
    Route("DELETE", f"{SERVER}/users/{{user_id}}", "server", "Erase a user (GDPR)",
          {204: None}, errors=(503,)),
    Route("POST", f"{SERVER}/users/{{user_id}}/disconnect", "server",
          "Close every connection of a user", {204: None}, errors=(503,)),
    Route("POST", _SC, "server", "Create a conversation",
          {200: ConversationObject, 201: ConversationObject},
          body=bodies.CreateConversation, headers=(_IDEMPOTENCY,), errors=(409, 413)),
    Route("PUT", _SC + "/{id}/members/{user_id}", "server", "Add a member or change a role",
          {200: shapes.MemberObject, 201: shapes.MemberObject}, body=bodies.PutMember,
          errors=(409, 413)),
    Route("DELETE", _SC + "/{id}/members/{user_id}", "server", "End a membership",
          {204: None}, errors=(409,)),
    Route("POST", _SC + "/{id}/messages", "server", "Post as a member or as the system",
          {200: MessageObject, 201: MessageObject}, body=bodies.PostMessage,
          errors=(403, 409, 413)),
    Route("GET", _SC + "/{id}/presence", "server", "Who of the members is connected",
          {200: shapes.Presence}),
    Route("GET", f"{SERVER}/webhooks/dead-letters", "server",
          "Dead-lettered webhook events, oldest first (never their content)",
          {200: DeadLetterPage}, query=_DEAD_PAGE),
    Route("POST", f"{SERVER}/webhooks/dead-letters/replay", "server",
          "Put dead-lettered events back in line, with a fresh retry window",
          {200: shapes.Replayed}, body=server_webhooks.Replay, errors=(413,)),
)
