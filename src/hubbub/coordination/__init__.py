"""The coordination seams: what every instance must count or hold together — rate-limit
buckets, presence and connection counts, WebSocket tickets, typing states — one protocol
per noun. Interfaces only: app.py picks the adapters (adapters/memory/ for one instance,
adapters/redis/ when a Redis URL is configured), so importing this package loads no driver.
"""

from __future__ import annotations

from hubbub.coordination.connection_limit import ConnectionLimiter
from hubbub.coordination.presence import PresenceCounter
from hubbub.coordination.ratelimit import RateLimiter
from hubbub.coordination.tickets import TicketStore
from hubbub.coordination.typing import Key, TypingStates

__all__ = ["ConnectionLimiter", "Key", "PresenceCounter", "RateLimiter", "TicketStore",
           "TypingStates"]
