"""Per-connection outboxes flushed once per event-loop tick (DESIGN.md, send path step 6).

Frames for a connection collect in its Outbox during a tick; one `call_soon` per tick (not
per connection) flushes every outbox that has something, each with one `transport.write`.
Every data frame of a connection goes through its Outbox, so frames never interleave.

Backpressure: after writing, a connection whose unsent bytes exceed `max_pending_bytes` is
a slow consumer and is closed with 4008 (PROTOCOL.md §1); its client syncs on reconnect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Flusher:
    """Schedules one flush per loop tick for all outboxes that have pending frames."""

    __slots__ = ("_dirty", "_loop", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._dirty: list[Outbox] = []
        self._scheduled = False

    def mark(self, outbox: Outbox) -> None:
        self._dirty.append(outbox)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush_all)

    def _flush_all(self) -> None:
        self._scheduled = False
        dirty, self._dirty = self._dirty, []
        for outbox in dirty:
            outbox.flush()


class Outbox:
    """The frames waiting for one connection's socket."""

    __slots__ = ("_flusher", "_on_overflow", "_pending", "_transport", "closed",
                 "max_pending_bytes")

    def __init__(self, transport: asyncio.Transport, flusher: Flusher, max_pending_bytes: int,
                 on_overflow: Callable[[], None]) -> None:
        self._transport = transport
        self._flusher = flusher
        self._pending: list[bytes] = []
        self._on_overflow = on_overflow
        self.max_pending_bytes = max_pending_bytes
        self.closed = False

    @property
    def transport(self) -> asyncio.Transport:
        return self._transport

    def push(self, frame: bytes) -> None:
        """Queue a complete frame; it is written at the end of this loop tick."""
        if self.closed:
            return
        if not self._pending:
            self._flusher.mark(self)
        self._pending.append(frame)

    def flush(self) -> None:
        """Write everything pending in one call (called by the Flusher)."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if self.closed or self._transport.is_closing():
            return
        self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))
        if self._transport.get_write_buffer_size() > self.max_pending_bytes:
            self.closed = True
            self._on_overflow()

    def close(self) -> None:
        """Drop whatever is pending and accept nothing more."""
        self.closed = True
        self._pending = []
