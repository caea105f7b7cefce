"""A real hubbub server on 127.0.0.1:0, in the test's event loop, and its test users."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from hubbub.app import BUS, DATABASE, HUB, STORES, USE_CASES, create_app
from hubbub.config import Settings
from hubbub.domain.clock import format_time
from hubbub.domain.tokens import mint
from hubbub.protocol.server import Pong
from hubbub.services.context import now_micros
from hubbub.services.events import Events
from hubbub.transport.listener import Listener
from hubbub.transport.metrics import METRICS
from hubbub.transport.server import LIFECYCLE
from hubbub.transport.websocket.connections import CONNECTIONS
from tests.support.client import ChatClient
from tests.support.stores import AnyStore
from tests.support.waiting import until


@dataclass
class User:
    id: str
    name: str
    token: str


class Internals:
    """A running app's parts: `hub`, `bus`, `database`, `metrics`, `sockets` (the open connections),
    every use case by name (`presence`, `typing`, …) and, as `store`, every store it
    opened."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.store = AnyStore(app[STORES])
        self.hub = app[HUB]
        self.bus = app[BUS]
        self.database = app[DATABASE]
        self.metrics = app[METRICS]
        self.sockets = app[CONNECTIONS].sockets

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app[USE_CASES], name)


class OnLocalPort:
    """The URLs of a server listening on 127.0.0.1:`port` (in this process or a child)."""

    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


@dataclass
class RunningServer(OnLocalPort):
    """A started server: its address, its settings, and helpers to act as users."""

    settings: Settings
    port: int
    app: web.Application
    _clients: list[ChatClient] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        """Under HUBBUB_BASE_PATH when it is set (`http://…/chat`)."""
        return f"http://127.0.0.1:{self.port}{self.settings.base_path}"

    @property
    def ws_url(self) -> str:
        return f"{self.base_url.replace('http://', 'ws://', 1)}/ws"

    @property
    def internals(self) -> Internals:
        """The running parts, for assertions on server state (never to fake behaviour)."""
        return Internals(self.app)

    def user(self, name: str | None = None, *, ttl: int = 3600, **claims: Any) -> User:
        """A new user (a fresh UUID) and a valid token for it."""
        user_id = str(uuid.uuid4())
        name = name or f"user-{user_id[:6]}"
        return User(user_id, name, self.token(user_id, name, ttl=ttl))

    def token(self, user_id: str, name: str | None, *, ttl: int = 3600) -> str:
        assert self.settings.jwt_secret is not None
        return mint(self.settings.jwt_secret, user_id, name, now=time.time(), ttl_s=ttl)

    def http(self, user: User | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {user.token}"} if user else {}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=10)

    async def connect(self, user: User, **kwargs: Any) -> ChatClient:
        """Open a WebSocket as `user`; waits for `Connected`. Closed at the end of the test."""
        client = await ChatClient.connect(self.ws_url, user.token, **kwargs)
        client.server_side = self
        self._clients.append(client)
        return client

    async def idle(self) -> None:
        """Return once the server handles no HTTP request or handshake, closes no connection
        and cleans none up (a cleanup may broadcast: a typing stop, a call's end)."""
        lifecycle, connections = self.app[LIFECYCLE], self.app[CONNECTIONS]

        def quiet() -> bool:
            return (all(task.done() for task in lifecycle.requests)
                    and not any(ws.closed for ws in connections.sockets.values()))

        await until(quiet, "the server is idle")

    def publish_pong(self, user_id: str, connection_id: str, timestamp: str) -> None:
        """A `Pong` on this server's bus to one connection, behind every event the server
        published before (the barrier of `ChatClient.settle`)."""
        events = Events(self.app[BUS])
        events.to_user(user_id, Pong(timestamp=timestamp, server_time=format_time(now_micros())),
                       only_connection=connection_id)

    async def create_conversation(self, owner: User, kind: str = "channel",
                                  name: str | None = "room",
                                  members: list[User] | None = None) -> dict[str, Any]:
        """Create a conversation over REST (the members must have been seen already)."""
        for member in members or []:
            await self.ensure_user(member)
        async with self.http(owner) as http:
            body: dict[str, Any] = {"kind": kind, "member_ids": [m.id for m in members or []]}
            if kind != "direct":
                body["name"] = name
            response = await http.post("/api/v1/conversations", json=body)
        assert response.status_code in (200, 201), response.text
        result: dict[str, Any] = response.json()
        return result

    async def ensure_user(self, user: User) -> None:
        """Make the server know a user (as its first valid token would)."""
        async with self.http(user) as http:
            response = await http.get("/api/v1/users/me")
        assert response.status_code == 200, response.text

    async def close_clients(self) -> None:
        for client in self._clients:
            await client.close()
        self._clients.clear()


def on_sqlite(directory: Path, **overrides: Any) -> Settings:
    """Settings on a SQLite file in `directory`, for tests of what no database changes."""
    values: dict[str, Any] = {"database_url": f"sqlite:///{directory / 'hubbub.db'}",
                              "log_format": "text", **overrides}
    return Settings(**values)


@asynccontextmanager
async def run_server(settings: Settings) -> AsyncIterator[RunningServer]:
    """Start hubbub with `settings` on a free port; stop it afterwards."""
    if not settings.has_key:
        settings = settings.model_copy(update={"jwt_secret": secrets.token_urlsafe(32)})
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=settings.shutdown_grace)
    await runner.setup()
    site = Listener(runner, settings, host="127.0.0.1", port=0)
    await site.start()
    port = runner.addresses[0][1]
    running = RunningServer(settings=settings, port=port, app=app)
    try:
        yield running
    finally:
        await running.close_clients()
        await runner.cleanup()
