"""Every HTTP route of PROTOCOL.md §7 (and the call history added to it), by resource."""

from __future__ import annotations

from aiohttp import web

from hubbub.transport.http import (
    calls,
    channels,
    conversations,
    health,
    members,
    messages,
    users,
)
from hubbub.transport.http.api import authed

API_PREFIX = "/api/v1"


def routes(app: web.Application, base: str = "") -> None:
    """Every user route under `base` (HUBBUB_BASE_PATH: `""` or `/chat`)."""
    app.router.add_get(f"{base}/healthz", health.healthz)
    app.router.add_get(f"{base}/readyz", health.readyz)
    api = base + API_PREFIX
    app.router.add_get(f"{api}/users/me", authed(users.users_me))
    app.router.add_post(f"{api}/ws-tickets", users.create_ws_ticket)
    app.router.add_get(f"{api}/conversations", authed(conversations.list_conversations))
    app.router.add_get(f"{api}/channels", authed(channels.list_channels))
    app.router.add_post(f"{api}/conversations", authed(conversations.create_conversation))
    app.router.add_get(f"{api}/conversations/{{id}}", authed(conversations.get_conversation))
    app.router.add_get(f"{api}/conversations/{{id}}/members", authed(members.list_members))
    app.router.add_put(f"{api}/conversations/{{id}}/members/{{user_id}}",
                       authed(members.put_member))
    app.router.add_delete(f"{api}/conversations/{{id}}/members/{{user_id}}",
                          authed(members.remove_member))
    app.router.add_patch(f"{api}/conversations/{{id}}/membership",
                         authed(members.patch_membership))
    app.router.add_get(f"{api}/conversations/{{id}}/messages", authed(messages.list_messages))
    app.router.add_post(f"{api}/conversations/{{id}}/messages", authed(messages.post_message))
    app.router.add_get(f"{api}/conversations/{{id}}/calls", authed(calls.list_calls))
