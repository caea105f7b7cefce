"""The bus seam: the `Bus` protocol, the envelope that travels on it, and its topics.

Interfaces only: the adapters (adapters/memory/bus.py, adapters/redis/bus.py) are picked by
the composition root (app.py), so importing this package loads no driver.
"""

from __future__ import annotations

from hubbub.bus.base import Bus, BusHandler, BusUnavailable, ResumeListener

__all__ = ["Bus", "BusHandler", "BusUnavailable", "ResumeListener"]
