"""Pub/sub adapters behind the `Bus` seam, chosen by URL (unset: memory, redis://: Redis)."""

from __future__ import annotations

from hubbub.bus.base import Bus, BusHandler
from hubbub.bus.memory import MemoryBus

__all__ = ["Bus", "BusHandler", "MemoryBus", "open_bus"]


def open_bus(url: str | None, *, prefix: str = "hubbub") -> Bus:
    """The bus for `url`: in-process when None, Redis for redis:// or rediss://."""
    if url is None:
        return MemoryBus()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from hubbub.bus.redis import RedisBus  # imported lazily: only multi-instance needs it

        return RedisBus(url, prefix=prefix)
    raise ValueError(f"unsupported bus URL scheme: {url.split(':', 1)[0]!r}")
