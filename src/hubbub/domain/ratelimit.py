"""Token-bucket arithmetic (PROTOCOL.md §6). Pure: the caller passes the clock.

A bucket holds at most `burst` tokens and refills at `rate` tokens per second; an action
takes one token. The state is two numbers, so the same math runs in process memory or, as a
Lua script, atomically in Redis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Refills are sums of float time differences: a client pacing at exactly `rate` can land a
# hair under a whole token (0.9999999999999998) and would be refused for 1 ms. A bucket this
# close to a token holds it.
EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class BucketRule:
    """`rate` tokens per second, at most `burst` saved up."""

    rate: float
    burst: int


@dataclass(frozen=True, slots=True)
class BucketState:
    tokens: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after_ms: int
    state: BucketState


def take(rule: BucketRule, state: BucketState | None, now: float) -> Decision:
    """Take one token from the bucket at time `now` (seconds), if one is there."""
    if state is None:
        tokens = float(rule.burst)
    else:
        elapsed = max(0.0, now - state.updated_at)
        tokens = min(float(rule.burst), state.tokens + elapsed * rule.rate)
    if tokens >= 1.0 - EPSILON:
        return Decision(True, 0, BucketState(max(0.0, tokens - 1.0), now))
    wait_s = (1.0 - tokens) / rule.rate if rule.rate > 0 else 3600.0
    return Decision(False, max(1, math.ceil(wait_s * 1000)), BucketState(tokens, now))


def refill_time(rule: BucketRule, state: BucketState) -> float:
    """Seconds until the bucket is full again: after that its state can be forgotten."""
    missing = rule.burst - state.tokens
    return missing / rule.rate if rule.rate > 0 else math.inf
