"""What every door of one running server shares: whether it is shutting down, and the
requests being handled (HTTP and WebSocket alike), which a graceful shutdown waits for."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

# A connection we close is gone this long after the decision, whatever its peer does: time
# to read what is queued and answer our close frame (docs/DECISIONS.md "Closing handshake").
CLOSE_TIMEOUT_S = 2.0


@dataclass
class Lifecycle:
    """Set to closing by a SIGTERM; every handler being run, for shutdown to wait for."""

    closing: bool = False
    requests: set[asyncio.Task[Any]] = field(default_factory=set)


LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
