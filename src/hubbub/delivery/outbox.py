"""Per-connection outboxes flushed once per event-loop tick (ARCHITECTURE.md, step 6).

Frames for a connection collect in its Outbox during a tick; one `call_soon` per tick (not
per connection) flushes every outbox that has something, each with one `transport.write`.
Every data frame of a connection goes through its Outbox, so frames never interleave.

Broadcasts (`push` of a `Chunk`): the hub queues a `Chunk` — the frames of consecutive events for
the same recipients — once per recipient, and appends the next events of the tick to it
instead of pushing each to every outbox; the chunk's bytes are joined once and the same
bytes written to every socket. The Flusher's `epoch` moves with every push and flush, so a
chunk is only extended while nothing else was queued anywhere since: each connection still
gets its frames in exactly the order they were queued.

Backpressure: after writing, a connection whose unsent bytes exceed `max_pending_bytes` is
a slow consumer and is closed with 4008 (PROTOCOL.md §1); its client syncs on reconnect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Flusher:
    """Schedules one flush per loop tick for all outboxes that have pending frames.

    The flush runs one iteration after the first frame was queued, not in the next one:
    the sends of one group commit resume together, each queueing its `ActionConfirmed`
    and a bus delivery (a callback of the following iteration). Flushing right after the
    first delivery would write each subscriber's socket twice per commit (measured: ~2×
    the `write` calls); deferred, every event of the commit shares one `write` per socket.
    """

    __slots__ = ("_dirty", "_loop", "_scheduled", "epoch")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._dirty: list[Outbox] = []
        self._scheduled = False
        # Moves with every push and flush of any outbox of this loop (see Chunk).
        self.epoch = 0

    def mark(self, outbox: Outbox) -> None:
        self._dirty.append(outbox)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._defer)

    def _defer(self) -> None:
        self._loop.call_soon(self._flush_all)

    def _flush_all(self) -> None:
        self._scheduled = False
        self.epoch += 1
        dirty, self._dirty = self._dirty, []
        for outbox in dirty:
            outbox.flush()


class Chunk:
    """Frames for one set of recipients, queued to each of them once (see the module doc).

    Only the hub appends to `frames`, and only while the Flusher's epoch has not moved
    since it queued the chunk; a flush moves it, so the joined bytes never go stale.
    """

    __slots__ = ("_data", "frames")

    def __init__(self, frame: bytes) -> None:
        self.frames = [frame]
        self._data: bytes | None = None

    def data(self) -> bytes:
        """All frames as one buffer, joined on first use and shared by every recipient."""
        data = self._data
        if data is None:
            frames = self.frames
            data = self._data = frames[0] if len(frames) == 1 else b"".join(frames)
        return data


class Outbox:
    """The frames waiting for one connection's socket."""

    __slots__ = ("_flusher", "_held", "_pending", "_transport", "closed", "max_pending_bytes",
                 "on_overflow")

    def __init__(self, transport: asyncio.Transport, flusher: Flusher, max_pending_bytes: int,
                 on_overflow: Callable[[], None] | None = None, *, held: bool = False) -> None:
        self._transport = transport
        # Held: frames queue but none is written until `release` puts the first frame ahead
        # of them (a new connection hears its user's events before it is greeted, and
        # `Connected` must still come first, PROTOCOL.md §1).
        self._held = held
        self._flusher = flusher
        # None while nothing waits: an idle connection keeps no empty list.
        self._pending: list[bytes | Chunk] | None = None
        # Called once when the peer falls behind; may be set after construction, so that
        # the owner can pass a bound method instead of a closure over itself.
        self.on_overflow = on_overflow
        self.max_pending_bytes = max_pending_bytes
        self.closed = False

    @property
    def transport(self) -> asyncio.Transport:
        return self._transport

    @property
    def flusher(self) -> Flusher:
        return self._flusher

    def push(self, item: bytes | Chunk) -> None:
        """Queue a complete frame, or a broadcast chunk (to which frames may still be
        appended in this tick); it is written at the end of this loop tick."""
        if self.closed:
            return
        flusher = self._flusher
        flusher.epoch += 1
        pending = self._pending
        if pending is None:
            self._pending = [item]
            if not self._held:
                flusher.mark(self)
        else:
            pending.append(item)

    def release(self, first: bytes) -> None:
        """Write `first`, then what was queued while held, at the end of this loop tick."""
        if self.closed:
            return
        self._held = False
        self._pending = [first, *(self._pending or ())]
        self._flusher.epoch += 1
        self._flusher.mark(self)

    def flush(self) -> None:
        """Write everything pending in one call (called by the Flusher)."""
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        self._flusher.epoch += 1
        if self.closed or self._transport.is_closing():
            return
        if len(pending) == 1:
            item = pending[0]
            data = item if isinstance(item, bytes) else item.data()
        else:
            data = b"".join([item if isinstance(item, bytes) else item.data()
                             for item in pending])
        self._transport.write(data)
        if self._transport.get_write_buffer_size() > self.max_pending_bytes:
            self.closed = True
            if self.on_overflow is not None:
                self.on_overflow()

    def close(self) -> None:
        """Drop whatever is pending and accept nothing more."""
        self.closed = True
        self._pending = None
