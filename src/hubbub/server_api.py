"""The backend's client of the server API (PROTOCOL.md §8), on aiohttp's HTTP client.

    async with ServerApi("http://127.0.0.1:8080", api_key) as api:
        await api.put_user("42", name="Ann")
        room = await api.create_conversation("group", name="Support", owner_id="42",
                                             idempotency_key="support-42")
        await api.post_message(room.id, "An agent will be with you shortly.")

Every method returns the typed result of its endpoint (hubbub.protocol's msgspec Structs
where the wire shares them) and raises `ServerApiError` with the HTTP status and the error
`code` of the answer (`NOT_FOUND`, `CONFLICT`, `UNAVAILABLE`…), the message naming the
field at fault. It imports nothing of the server: a backend installs hubbub for it alone.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import aiohttp
import msgspec

from hubbub.protocol.objects import Attachment, ConversationObject, MessageObject, Role

T = TypeVar("T")
PREFIX = "/api/v1/server"


class ServerUser(msgspec.Struct, frozen=True):
    """A user as the server API shows it (§8)."""

    id: str
    name: str
    avatar_url: str | None
    metadata: dict[str, Any] | None
    created_at: str
    last_seen: str | None


class Member(msgspec.Struct, frozen=True):
    """A conversation member (§7)."""

    user_id: str
    user_name: str
    role: Role
    joined_at: str
    accepted: bool


class MemberPresence(msgspec.Struct, frozen=True):
    user_id: str
    online: bool


class Presence(msgspec.Struct, frozen=True):
    """Who of a conversation's members is connected anywhere."""

    members: list[MemberPresence]
    online: list[str]


class _ErrorBody(msgspec.Struct):
    code: str
    message: str = ""


class _Refusal(msgspec.Struct):
    error: _ErrorBody


class ServerApiError(Exception):
    """The server API refused a request (nothing changed, PROTOCOL.md §8)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def _path(*parts: str) -> str:
    """A path under the prefix, each user-supplied part percent-encoded (a backend's user
    id may hold `|` or `/`, as `auth0|…` does)."""
    return PREFIX + "".join("/" + quote(part, safe="") for part in parts)


class ServerApi:
    """One backend's client; `session` lets it share an aiohttp session of the caller."""

    def __init__(self, base_url: str, api_key: str, *,
                 session: aiohttp.ClientSession | None = None,
                 timeout: float = 15.0) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._session = session
        self._own = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def __aenter__(self) -> ServerApi:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, value: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own and self._session is not None:
            await self._session.close()
            self._session = None

    # Users

    async def put_user(self, user_id: str, *, name: str | None = None,
                       avatar_url: str | None = None,
                       metadata: dict[str, Any] | None = None) -> ServerUser:
        """Create or update a user (`avatar_url`, `metadata` are replaced as sent)."""
        body = _without_none(name=name, avatar_url=avatar_url, metadata=metadata)
        return await self._call("PUT", _path("users", user_id), ServerUser, body)

    async def get_user(self, user_id: str) -> ServerUser:
        return await self._call("GET", _path("users", user_id), ServerUser)

    async def erase_user(self, user_id: str) -> None:
        """GDPR erasure (§8): connections closed with 4003, messages become tombstones."""
        await self._send("DELETE", _path("users", user_id))

    async def disconnect_user(self, user_id: str) -> None:
        """Close every connection of the user with 4003 (it may reconnect)."""
        await self._send("POST", _path("users", user_id, "disconnect"))

    # Conversations

    async def create_conversation(self, kind: Literal["direct", "group", "channel"], *,
                                  name: str | None = None, owner_id: str | None = None,
                                  member_ids: list[str] | None = None,
                                  idempotency_key: str | None = None) -> ConversationObject:
        """A new conversation; with `idempotency_key` a retry answers the same one."""
        body = _without_none(kind=kind, name=name, owner_id=owner_id, member_ids=member_ids)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
        return await self._call("POST", _path("conversations"), ConversationObject, body,
                                headers)

    async def put_member(self, conversation_id: str, user_id: str,
                         role: Role = "member") -> Member:
        return await self._call("PUT", _path("conversations", conversation_id, "members",
                                             user_id), Member, {"role": role})

    async def remove_member(self, conversation_id: str, user_id: str) -> None:
        await self._send("DELETE", _path("conversations", conversation_id, "members", user_id))

    async def post_message(self, conversation_id: str, content: str = "", *,
                           sender_id: str | None = None, parent_id: str | None = None,
                           attachments: list[Attachment] | None = None,
                           client_message_id: str | None = None) -> MessageObject:
        """Post as `sender_id`, or without it as the system (`kind: "system"`)."""
        body = _without_none(content=content, sender_id=sender_id, parent_id=parent_id,
                             attachments=attachments, client_message_id=client_message_id)
        return await self._call("POST", _path("conversations", conversation_id, "messages"),
                                MessageObject, body)

    async def presence(self, conversation_id: str) -> Presence:
        return await self._call("GET", _path("conversations", conversation_id, "presence"),
                                Presence)

    async def _call(self, method: str, path: str, kind: type[T],
                    body: dict[str, Any] | None = None,
                    headers: dict[str, str] | None = None) -> T:
        return msgspec.json.decode(await self._send(method, path, body, headers), type=kind)

    async def _send(self, method: str, path: str, body: dict[str, Any] | None = None,
                    headers: dict[str, str] | None = None) -> bytes:
        """The answer's body; raises `ServerApiError` for a refusal."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        sent = {**self._headers, **(headers or {})}
        data = None
        if body is not None:
            data, sent["Content-Type"] = msgspec.json.encode(body), "application/json"
        async with self._session.request(method, self._base + path, data=data, headers=sent,
                                         timeout=self._timeout) as response:
            raw = await response.read()
            if response.status >= 400:
                raise _error(response.status, raw)
        return raw


def _error(status: int, raw: bytes) -> ServerApiError:
    try:
        refusal = msgspec.json.decode(raw, type=_Refusal)
    except msgspec.DecodeError:
        return ServerApiError(status, f"HTTP_{status}", raw[:200].decode(errors="replace"))
    return ServerApiError(status, refusal.error.code, refusal.error.message)


def _without_none(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}
