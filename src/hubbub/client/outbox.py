"""The requests a client has sent or will send, until each is answered exactly once.

Every request gets a `request_id`, matched by its one direct answer (PROTOCOL.md §2). A
request made while disconnected waits here; one sent on a connection that then dropped is
sent again on the next connection, unchanged (a `SendMessage` keeps its
`client_message_id`, so the server stores it once: §2 idempotency); a `RATE_LIMITED` answer
holds it for `retry_after_ms` and then sends it again, unchanged. Requests the client makes
for itself on one connection (the re-join and sync after a reconnect) are `bound` to it:
they fail with `ConnectionLost` when it drops, since the next connection repeats them.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

import msgspec

from hubbub.protocol.client import ClientMessage
from hubbub.protocol.server import AnyServerMessage


class ConnectionLost(Exception):
    """The connection a bound request was sent on dropped before its answer."""


@dataclass(eq=False)
class Pending:
    message: ClientMessage
    future: asyncio.Future[AnyServerMessage]
    bound: bool
    sent: bool = False
    held: bool = False  # waiting out a RATE_LIMITED answer


class Outbox:
    """Pending requests by `request_id`, in the order they were made."""

    def __init__(self, prefix: str = "r") -> None:
        self._pending: dict[str, Pending] = {}
        self._ids = itertools.count(1)
        self._prefix = prefix

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, message: ClientMessage, *, bound: bool = False) -> Pending:
        """A new pending request (its `request_id` assigned here)."""
        request_id = f"{self._prefix}{next(self._ids)}"
        message = msgspec.structs.replace(message, request_id=request_id)
        pending = Pending(message, asyncio.get_running_loop().create_future(), bound)
        self._pending[request_id] = pending
        return pending

    def to_send(self) -> list[Pending]:
        """The requests to put on the connection now, oldest first."""
        return [p for p in self._pending.values() if not p.sent and not p.held]

    def answered(self, request_id: str | None) -> Pending | None:
        """The pending request this answer is for, no longer pending (None: not ours)."""
        if request_id is None:
            return None
        return self._pending.pop(request_id, None)

    def hold(self, pending: Pending) -> None:
        """Back in the outbox, held until `release` (after `retry_after_ms`)."""
        pending.sent, pending.held = False, True
        self._pending[pending.message.request_id or ""] = pending

    def release(self, pending: Pending) -> None:
        pending.held = False

    def discard(self, pending: Pending) -> None:
        """The caller stopped waiting (cancelled)."""
        self._pending.pop(pending.message.request_id or "", None)

    def connection_lost(self) -> None:
        """Fail the bound requests; everything else waits for the next connection."""
        for request_id, pending in list(self._pending.items()):
            if pending.bound:
                del self._pending[request_id]
                if not pending.future.done():
                    pending.future.set_exception(ConnectionLost())
            else:
                pending.sent = False

    def fail_all(self, error: BaseException) -> None:
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(error)
        self._pending.clear()
