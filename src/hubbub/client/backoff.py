"""Reconnect delays: exponential backoff with full jitter.

Full jitter (a uniform delay between 0 and the exponential cap) spreads the reconnects of
many clients that lost the same instance at the same moment, so a restart is no stampede
(PROTOCOL.md §1, close code 1001). Pure: the random source is passed in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """The delay before reconnect attempt `attempt` (0 for the first after a loss)."""

    initial: float = 0.5
    maximum: float = 30.0
    multiplier: float = 2.0
    # §1: after a `1001` (the server shutting down) clients spread their reconnects over
    # up to a few seconds, so the instances left are not hit by all of them at once.
    after_shutdown: float = 3.0
    random: random.Random = field(default_factory=random.Random)

    def cap(self, attempt: int) -> float:
        """The largest delay of this attempt: initial · multiplier^attempt, at most maximum."""
        if attempt > 64:  # the cap is long reached; avoid float overflow
            return self.maximum
        return min(self.maximum, self.initial * self.multiplier ** attempt)

    def delay(self, attempt: int, close_code: int | None = None) -> float:
        """A delay drawn uniformly from [0, cap(attempt)] (at least [0, after_shutdown]
        after a close with `1001`)."""
        cap = self.cap(attempt)
        if close_code == 1001:
            cap = max(cap, self.after_shutdown)
        return self.random.uniform(0, cap)
