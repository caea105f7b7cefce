"""`/conversations/{id}/members` (PROTOCOL.md §7): list, add or change, remove."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from hubbub.domain.clock import format_time
from hubbub.domain.models import Member
from hubbub.protocol.objects import Role as RoleName
from hubbub.services.context import Actor
from hubbub.services.views import summary_object
from hubbub.transport.http.api import Api, path_id, path_user_id
from hubbub.transport.http.bodies import json_response, read_body


class PutMember(msgspec.Struct, frozen=True):
    role: RoleName


async def list_members(request: web.Request, api: Api, actor: Actor) -> web.Response:
    """`online` is shown only for members who accepted (docs/DECISIONS.md, "Consent"): an
    invited member is listed `accepted: false, online: false` whether connected or not."""
    members = await api.conversations.members(actor, path_id(request))
    online = await api.presence.visible_online(members)
    return json_response({"members": [
        {**_member_object(m), "online": m.user_id in online} for m in members
    ]})


def _member_object(member: Member) -> dict[str, Any]:
    return {"user_id": member.user_id, "user_name": member.user_name, "role": member.role,
            "joined_at": format_time(member.joined_at), "accepted": member.accepted}


async def put_member(request: web.Request, api: Api, actor: Actor) -> web.Response:
    body = await read_body(request, PutMember, api.max_body_bytes)
    member, created = await api.conversations.put_member(
        actor, path_id(request), path_user_id(request), body.role
    )
    return json_response(_member_object(member), 201 if created else 200)


class PatchMembership(msgspec.Struct, frozen=True):
    muted: bool | None = None
    pinned: bool | None = None


async def patch_membership(request: web.Request, api: Api, actor: Actor) -> web.Response:
    """The caller's own settings (`UpdateMembership`); the caller's conversation object."""
    body = await read_body(request, PatchMembership, api.max_body_bytes)
    summary = await api.member_settings.update(actor, path_id(request), body.muted,
                                               body.pinned)
    return json_response(summary_object(summary))


async def remove_member(request: web.Request, api: Api, actor: Actor) -> web.Response:
    await api.conversations.remove_member(actor, path_id(request),
                                          path_user_id(request))
    return web.Response(status=204)
