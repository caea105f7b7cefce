"""A real webhook receiver: an aiohttp server in the test process that verifies every
request with the `standardwebhooks` package and records what arrived.

It can misbehave on demand (`mode`: answer 500, or take longer than the sender's timeout),
go down and come back on the same port, and it notes any event that arrived while another
request for the same event or the same conversation was still being answered — what the
dispatcher promises never to do.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.support.process import free_port

Mode = Literal["ok", "fail", "slow"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Endpoint:
    """An aiohttp server on 127.0.0.1 answering POSTs to one path; it can go down and come
    back on the same port."""

    def __init__(self, path: str, handler: Handler) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{path}"
        self._path = path
        self._handler = handler
        self._runner: web.AppRunner | None = None

    async def up(self) -> None:
        app = web.Application()
        app.router.add_post(self._path, self._handler)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def down(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@dataclass
class Received:
    id: str
    type: str
    data: dict[str, Any]
    at: float


@dataclass
class WebhookReceiver:
    secret: str = field(default_factory=new_secret)
    mode: Mode = "ok"
    slow_s: float = 3.0
    events: list[Received] = field(default_factory=list)  # every verified 2xx delivery
    attempts: int = 0
    unverified: int = 0
    concurrent_same_event: int = 0
    concurrent_same_conversation: int = 0
    _in_flight: dict[str, int] = field(default_factory=dict)
    _conversations_in_flight: dict[str, int] = field(default_factory=dict)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._endpoint = Endpoint("/hooks", self._handle)
        self.url = self._endpoint.url
        self.up, self.down = self._endpoint.up, self._endpoint.down

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.attempts += 1
        try:
            payload = Webhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.unverified += 1
            return web.Response(status=400)
        event_id = request.headers["webhook-id"]
        conversation_id = payload["data"].get("conversation_id", "")
        if self._in_flight.get(event_id):
            self.concurrent_same_event += 1
        if self._conversations_in_flight.get(conversation_id):
            self.concurrent_same_conversation += 1
        self._in_flight[event_id] = self._in_flight.get(event_id, 0) + 1
        self._conversations_in_flight[conversation_id] = (
            self._conversations_in_flight.get(conversation_id, 0) + 1)
        try:
            return await self._answer(event_id, payload)
        finally:
            self._in_flight[event_id] -= 1
            self._conversations_in_flight[conversation_id] -= 1

    async def _answer(self, event_id: str, payload: dict[str, Any]) -> web.Response:
        if self.mode == "fail":
            return web.Response(status=500)
        if self.mode == "slow":
            await asyncio.sleep(self.slow_s)
            return web.Response(status=504)
        await asyncio.sleep(0.002)  # long enough for overlapping requests to be seen
        self.events.append(Received(event_id, payload["type"], payload["data"],
                                    time.monotonic()))
        self._changed.set()
        return web.Response(status=204)

    # -- what the tests ask -------------------------------------------------------------

    def unique(self, conversation_id: str | None = None) -> list[Received]:
        """Each event once, in the order of its first delivery."""
        seen: set[str] = set()
        found = []
        for event in self.events:
            if event.id in seen:
                continue
            if conversation_id in (None, event.data.get("conversation_id", "")):
                seen.add(event.id)
                found.append(event)
        return found

    def of(self, conversation_id: str) -> list[tuple[str, int]]:
        """(type, version) of each event of a conversation, in order of first delivery."""
        return [(e.type, e.data["version"]) for e in self.unique(conversation_id)]

    async def wait_until(self, check: Callable[[], bool], timeout: float = 30.0,
                         what: str = "webhook events") -> None:
        deadline = time.monotonic() + timeout
        while not check():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {what}; got "
                                     f"{[(e.type, e.data.get('version')) for e in self.events]}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))

    async def wait_for_count(self, conversation_id: str, count: int,
                             timeout: float = 30.0) -> list[tuple[str, int]]:
        await self.wait_until(lambda: len(self.unique(conversation_id)) >= count, timeout,
                              f"{count} events of {conversation_id}")
        return self.of(conversation_id)
