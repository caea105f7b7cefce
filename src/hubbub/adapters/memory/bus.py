"""The in-process bus of a single instance: a set of topics and one handler."""

from __future__ import annotations

import asyncio

from hubbub.bus.base import BusHandler, ResumeListener


class MemoryBus:
    """Delivers on the next loop iteration, in publish order, like a remote bus would."""

    def __init__(self) -> None:
        self._topics: set[str] = set()
        self._handler: BusHandler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self, handler: BusHandler) -> None:
        self._handler = handler
        self._loop = asyncio.get_running_loop()

    async def close(self) -> None:
        self._handler = None

    def publish(self, topic: str, payload: bytes) -> None:
        if self._handler is not None and self._loop is not None and topic in self._topics:
            self._loop.call_soon(self._handler, topic, payload)

    def subscribe(self, topic: str) -> None:
        self._topics.add(topic)

    def unsubscribe(self, topic: str) -> None:
        self._topics.discard(topic)

    async def ready(self, topic: str) -> None:
        return None

    def on_resumed(self, listener: ResumeListener) -> None:
        return None  # an in-process bus is never down

    async def ping(self) -> None:
        return None

    @property
    def healthy(self) -> bool:
        return True

    @property
    def dropped(self) -> int:
        return 0
