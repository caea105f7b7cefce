"""A test chat client on a real WebSocket (the `websockets` library, independent of aiohttp).

It reads in the background and keeps every frame, so a test can ask for the direct response
to a request (`request`), the next broadcast of a type (`expect`), or assert that nothing of
a type arrives (`expect_none`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

DEFAULT_TIMEOUT = 10.0
_ids = itertools.count(1)


class ChatClient:
    def __init__(self, ws: ClientConnection, connected: dict[str, Any]) -> None:
        self.ws = ws
        self.connected = connected
        self.user_id: str = connected["user_id"]
        self.frames: list[dict[str, Any]] = []
        self._cursor = 0
        self._arrived = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read())
        self.close_code: int | None = None

    @classmethod
    async def connect(cls, ws_url: str, token: str, **kwargs: Any) -> ChatClient:
        ws = await websockets.connect(f"{ws_url}?token={token}", max_size=None, **kwargs)
        first = json.loads(await asyncio.wait_for(ws.recv(), DEFAULT_TIMEOUT))
        assert first["type"] == "Connected", first
        return cls(ws, first)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.frames.append(json.loads(raw))
                self._arrived.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self._arrived.set()

    @property
    def closed(self) -> bool:
        """Whether the connection has ended (every frame it carried is in `frames`)."""
        return self._reader.done()

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def send(self, type_: str, **fields: Any) -> str:
        """Send a message with a fresh request_id (unless given); returns the request_id."""
        fields.setdefault("request_id", f"r{next(_ids)}")
        await self.ws.send(json.dumps({"type": type_, **fields}))
        return str(fields["request_id"])

    async def request(self, type_: str, timeout: float = DEFAULT_TIMEOUT,
                      **fields: Any) -> dict[str, Any]:
        """Send and wait for the direct response (the frame carrying our request_id)."""
        request_id = await self.send(type_, **fields)
        return await self.response(request_id, timeout)

    async def response(self, request_id: str, timeout: float = DEFAULT_TIMEOUT
                       ) -> dict[str, Any]:
        return await self._wait(lambda f: f.get("request_id") == request_id, timeout,
                                f"response to {request_id}")

    async def expect(self, type_: str, timeout: float = DEFAULT_TIMEOUT,
                     **match: Any) -> dict[str, Any]:
        """The next not-yet-consumed frame of `type_` whose fields equal `match`."""
        def wanted(frame: dict[str, Any]) -> bool:
            return frame["type"] == type_ and all(frame.get(k) == v for k, v in match.items())
        return await self._wait(wanted, timeout, f"{type_} {match}")

    async def expect_none(self, type_: str, within: float = 0.3, **match: Any) -> None:
        """Assert that no frame of `type_` (matching `match`) arrives within `within` s."""
        await asyncio.sleep(within)
        found = [f for f in self.frames if f["type"] == type_
                 and all(f.get(k) == v for k, v in match.items()) and not f.get("_seen")]
        assert not found, f"unexpected {type_}: {found}"

    def all(self, type_: str) -> list[dict[str, Any]]:
        """Every frame of a type received so far."""
        return [f for f in self.frames if f["type"] == type_]

    async def wait_closed(self, timeout: float = DEFAULT_TIMEOUT) -> int | None:
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.close_code

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader

    async def _wait(self, predicate: Any, timeout: float, what: str) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for frame in self.frames:
                if not frame.get("_seen") and predicate(frame):
                    frame["_seen"] = True
                    return {k: v for k, v in frame.items() if k != "_seen"}
            if self._reader.done():
                raise AssertionError(f"connection closed ({self.close_code}) waiting for {what}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {what}; got "
                                     f"{[f['type'] for f in self.frames]}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)
