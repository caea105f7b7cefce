"""Calls of the server API (PROTOCOL.md §8) as a backend makes them: over real HTTP, with
an API key, each returning the raw response for the test to judge."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import httpx

from tests.support.server import RunningServer, User, run_server

if TYPE_CHECKING:
    from tests.conftest import Backend

# Two keys, as while rotating: both must be accepted.
API_KEY = secrets.token_urlsafe(32)
OLD_API_KEY = secrets.token_urlsafe(32)
PREFIX = "/api/v1/server"


class Instance(Protocol):
    @property
    def base_url(self) -> str: ...


I = TypeVar("I", bound=Instance)  # noqa: E741


class ServerApi(Generic[I]):
    """The backend's client of one instance (in-process or a child process); `key` None
    sends no Authorization header."""

    def __init__(self, instance: I, key: str | None = API_KEY) -> None:
        self.instance = instance
        self.key = key

    def _http(self, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
        sent = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        sent.update(headers or {})
        return httpx.AsyncClient(base_url=self.instance.base_url, headers=sent, timeout=15)

    async def call(self, method: str, path: str, json: Any = None,
                   headers: dict[str, str] | None = None) -> httpx.Response:
        async with self._http(headers) as http:
            return await http.request(method, PREFIX + path, json=json)

    async def put_user(self, user_id: str, **body: Any) -> httpx.Response:
        return await self.call("PUT", f"/users/{user_id}", body)

    async def get_user(self, user_id: str) -> httpx.Response:
        return await self.call("GET", f"/users/{user_id}")

    async def erase(self, user_id: str) -> httpx.Response:
        return await self.call("DELETE", f"/users/{user_id}")

    async def disconnect(self, user_id: str) -> httpx.Response:
        return await self.call("POST", f"/users/{user_id}/disconnect")

    async def create(self, key: str | None = None, **body: Any) -> httpx.Response:
        headers = {"Idempotency-Key": key} if key is not None else None
        return await self.call("POST", "/conversations", body, headers)

    async def put_member(self, conversation_id: str, user_id: str,
                         **body: Any) -> httpx.Response:
        return await self.call("PUT", f"/conversations/{conversation_id}/members/{user_id}",
                               body)

    async def remove_member(self, conversation_id: str, user_id: str) -> httpx.Response:
        return await self.call("DELETE",
                               f"/conversations/{conversation_id}/members/{user_id}")

    async def post(self, conversation_id: str, **body: Any) -> httpx.Response:
        return await self.call("POST", f"/conversations/{conversation_id}/messages", body)

    async def presence(self, conversation_id: str) -> httpx.Response:
        return await self.call("GET", f"/conversations/{conversation_id}/presence")

    async def group(self, owner_id: str | None, member_ids: list[str],
                    name: str = "room") -> dict[str, Any]:
        """A group made by the backend (asserting it was created)."""
        response = await self.create(kind="group", name=name, owner_id=owner_id,
                                     member_ids=member_ids)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result


def assert_api_error(response: httpx.Response, status: int, code: str,
                     field: str | None = None) -> None:
    """The §7 error shape with this status and code, naming `field` when given."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    if field is not None:
        assert field in error["message"], error


@asynccontextmanager
async def api_instance(backend: Backend) -> AsyncIterator[RunningServer]:
    """A server on `backend` with both keys configured (as while rotating)."""
    settings = backend.settings(rate_limits=False, api_keys=(API_KEY, OLD_API_KEY))
    async with run_server(settings) as running:
        yield running


def new_id() -> str:
    return str(uuid.uuid4())


async def made_user(api: ServerApi[RunningServer], name: str = "ann") -> User:
    """A user the backend created, and a token for it."""
    user = api.instance.user(name)
    response = await api.put_user(user.id, name=name)
    assert response.status_code == 201, response.text
    return user
