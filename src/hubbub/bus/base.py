"""The `Bus` seam: at-most-once pub/sub between hubbub instances.

`publish` never blocks: events are queued and sent in call order, so events published in
commit order leave in commit order. Every instance — the publisher's own included — gets
events only through the bus, so nothing is delivered twice. A lost event costs latency,
never data: clients see the version gap and sync.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

BusHandler = Callable[[str, bytes], None]
ResumeListener = Callable[[], None]


class Bus(Protocol):
    async def start(self, handler: BusHandler) -> None:
        """Begin delivering events of subscribed topics to `handler(topic, payload)`."""

    async def close(self) -> None: ...

    def publish(self, topic: str, payload: bytes) -> None:
        """Queue `payload` for every instance subscribed to `topic`."""

    def subscribe(self, topic: str) -> None:
        """Start receiving `topic` (idempotent)."""

    def unsubscribe(self, topic: str) -> None:
        """Stop receiving `topic` (idempotent)."""

    async def ready(self, topic: str) -> None:
        """Return once events published on a subscribed `topic` from now on reach this
        instance; at once when the bus is down (those events are lost anyway) or when the
        wait takes unreasonably long."""

    def on_resumed(self, listener: ResumeListener) -> None:
        """Call `listener()` each time the bus carries events again after an outage: what
        was published meanwhile is lost, so state kept fresh by events must be dropped."""

    async def ping(self) -> None:
        """Raise BusUnavailable when the bus cannot carry events right now."""

    @property
    def healthy(self) -> bool:
        """Whether events are flowing (for /readyz)."""

    @property
    def dropped(self) -> int:
        """Events published here that the bus lost (for /metrics)."""


class BusUnavailable(Exception):
    """The bus is down; events published meanwhile may be lost."""
