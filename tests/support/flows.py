"""Small steps that end-to-end tests repeat, so each test reads like the sentence it proves."""

from __future__ import annotations

import re
from typing import Any, Protocol

import httpx

from tests.support.client import ChatClient
from tests.support.server import RunningServer, User


class HttpServer(Protocol):
    """Anything that hands out authenticated HTTP clients (in-process or child process)."""

    def http(self, user: User | None = None) -> httpx.AsyncClient: ...

# Generous: the suite shares two cores with other work; a healthy server answers in ms.
TIMEOUT = 15.0
# A well-formed id that names nothing.
MISSING = "00000000-0000-4000-8000-000000000000"
# The wire's ids and times (PROTOCOL.md §2): UUIDs, RFC 3339 UTC with microseconds.
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


async def joined(server: RunningServer, user: User, conversation_id: str) -> ChatClient:
    """A connection of `user` subscribed to the conversation."""
    client = await server.connect(user)
    reply = await client.request("JoinConversation", conversation_id=conversation_id,
                                 timeout=TIMEOUT)
    assert reply["type"] == "ActionConfirmed", reply
    return client


async def send(client: ChatClient, conversation_id: str, content: str = "hello",
               **fields: Any) -> dict[str, Any]:
    """Send a message and return the stored message from its `ActionConfirmed`."""
    reply = await client.request("SendMessage", conversation_id=conversation_id,
                                 content=content, timeout=TIMEOUT, **fields)
    assert reply["type"] == "ActionConfirmed", reply
    assert reply["action"] == "SendMessage"
    message: dict[str, Any] = reply["message"]
    return message


async def chat(sender: ChatClient, receiver: ChatClient, conversation_id: str,
               content: str) -> dict[str, Any]:
    """Both connections join; `sender` sends `content`; the message `receiver` hears."""
    for client in (sender, receiver):
        reply = await client.request("JoinConversation", conversation_id=conversation_id,
                                     timeout=TIMEOUT)
        assert reply["type"] == "ActionConfirmed", reply
    await send(sender, conversation_id, content)
    heard = await receiver.expect("NewMessage", timeout=TIMEOUT)
    assert heard["message"]["content"] == content, heard
    message: dict[str, Any] = heard["message"]
    return message


async def fetch(client: ChatClient, conversation_id: str, **fields: Any) -> dict[str, Any]:
    """One `FetchHistory` page (asserting it is a `HistoryChunk`)."""
    reply = await client.request("FetchHistory", conversation_id=conversation_id,
                                 timeout=TIMEOUT, **fields)
    assert reply["type"] == "HistoryChunk", reply
    return reply


async def all_messages(client: ChatClient, conversation_id: str,
                       limit: int = 100) -> list[dict[str, Any]]:
    """The whole history, oldest first, paged with the `next_before` cursor."""
    pages: list[list[dict[str, Any]]] = []
    before: int | None = None
    while True:
        fields: dict[str, Any] = {"limit": limit}
        if before is not None:
            fields["before"] = before
        page = await fetch(client, conversation_id, **fields)
        pages.append(page["messages"])
        if not page["has_more"]:
            break
        before = page["next_before"]
    return [message for page in reversed(pages) for message in page]


async def rest_messages(server: HttpServer, user: User,
                        conversation_id: str) -> list[dict[str, Any]]:
    """The whole history through `GET …/messages`, oldest first."""
    found: list[dict[str, Any]] = []
    before: int | None = None
    async with server.http(user) as http:
        while True:
            params: dict[str, Any] = {"limit": 100}
            if before is not None:
                params["before"] = before
            response = await http.get(f"/api/v1/conversations/{conversation_id}/messages",
                                      params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            found = body["messages"] + found
            if not body["has_more"]:
                return found
            before = body["next_before"]


def assert_error(frame: dict[str, Any], code: str, *, field: str | None = None,
                 request_id: str | None = None) -> None:
    """`frame` is an `Error` with `code`, naming `field` (a JSONPath) and echoing the id."""
    assert frame["type"] == "Error", frame
    assert frame["code"] == code, frame
    assert isinstance(frame["message"], str), frame
    assert frame["message"], frame
    if field is not None:
        assert f"`{field}`" in frame["message"], frame
    assert frame.get("request_id") == request_id, frame


def assert_tombstone(message: dict[str, Any]) -> None:
    """A deleted message shows nothing of what it said (PROTOCOL.md §2)."""
    assert message["content"] == "", message
    assert message["attachments"] == [], message
    assert message["reactions"] == [], message
    assert message["deleted_at"] is not None, message


def attachment(**overrides: Any) -> dict[str, Any]:
    """Valid attachment metadata, with fields overridden."""
    value: dict[str, Any] = {"url": "https://files.example/a.png", "name": "a.png",
                             "mime_type": "image/png", "size": 5123, "width": 640,
                             "height": 480}
    value.update(overrides)
    return value


async def set_role(server: RunningServer, actor: User, conversation_id: str, target: User,
                   role: str) -> int:
    """`PUT …/members/{user}` as `actor`; returns the HTTP status."""
    await server.ensure_user(target)
    async with server.http(actor) as http:
        response = await http.put(
            f"/api/v1/conversations/{conversation_id}/members/{target.id}", json={"role": role}
        )
    return response.status_code


async def roles(server: RunningServer, viewer: User, conversation_id: str) -> dict[str, str]:
    """`{user_id: role}` of the conversation's members, as `viewer` lists them."""
    async with server.http(viewer) as http:
        response = await http.get(f"/api/v1/conversations/{conversation_id}/members")
    assert response.status_code == 200, response.text
    return {m["user_id"]: m["role"] for m in response.json()["members"]}
