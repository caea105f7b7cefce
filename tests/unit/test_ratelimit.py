"""Token-bucket math (PROTOCOL.md §6) with a clock the test controls."""

from __future__ import annotations

import math

import pytest

from hubbub.adapters.memory.ratelimit import MemoryRateLimiter, Unlimited
from hubbub.domain.errors import RateLimited
from hubbub.domain.ratelimit import BucketRule, BucketState, Decision, refill_time, take

SEND = BucketRule(rate=5.0, burst=20)  # the §6 default for SendMessage/EditMessage


class FakeClock:
    """Seconds that move only when the test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def drain(rule: BucketRule, state: BucketState | None, now: float, times: int
          ) -> tuple[list[Decision], BucketState | None]:
    decisions = []
    for _ in range(times):
        decision = take(rule, state, now)
        decisions.append(decision)
        state = decision.state
    return decisions, state


def test_a_new_bucket_allows_the_burst_then_refuses() -> None:
    """A fresh bucket is full: `burst` actions pass at once, the next one is refused."""
    decisions, _ = drain(SEND, None, 0.0, 21)
    assert [d.allowed for d in decisions] == [True] * 20 + [False]


def test_retry_after_is_the_time_until_the_next_token() -> None:
    """An empty bucket at 5/s has its next token in 200 ms."""
    _, state = drain(SEND, None, 0.0, 20)
    refused = take(SEND, state, 0.0)
    assert not refused.allowed
    assert refused.retry_after_ms == 200
    half_way = take(SEND, refused.state, 0.1)
    assert not half_way.allowed
    assert half_way.retry_after_ms == 100


def test_retry_after_is_at_least_one_millisecond() -> None:
    """A token due in a fraction of a millisecond still says "retry after 1 ms"."""
    rule = BucketRule(rate=5.0, burst=1)
    state = BucketState(tokens=0.9999999, updated_at=0.0)
    decision = take(rule, state, 0.0)
    assert not decision.allowed
    assert decision.retry_after_ms == 1


def test_tokens_come_back_at_the_rate() -> None:
    """After 1/rate seconds one more action passes, and only one."""
    _, state = drain(SEND, None, 0.0, 20)
    assert state is not None
    assert take(SEND, state, 0.19).allowed is False
    decisions, _ = drain(SEND, state, 0.2, 2)
    assert [d.allowed for d in decisions] == [True, False]


def test_a_long_pause_refills_to_the_burst_and_no_further() -> None:
    """Idle time saves up at most `burst` tokens."""
    _, state = drain(SEND, None, 0.0, 20)
    decisions, _ = drain(SEND, state, 3600.0, 21)
    assert [d.allowed for d in decisions] == [True] * 20 + [False]


def test_a_steady_rate_at_the_limit_is_never_refused() -> None:
    """Sending exactly at `rate` for a minute (after the burst is spent) always passes."""
    _, state = drain(SEND, None, 0.0, 20)
    for step in range(1, 300):
        decision = take(SEND, state, step / SEND.rate)
        assert decision.allowed, step
        state = decision.state


def test_twice_the_rate_is_half_refused() -> None:
    """Over a long run, sending at twice the rate gets about half through."""
    rule = BucketRule(rate=10.0, burst=1)
    state: BucketState | None = None
    allowed = 0
    for step in range(2000):
        decision = take(rule, state, step / 20.0)
        allowed += decision.allowed
        state = decision.state
    assert 990 <= allowed <= 1010


def test_a_clock_going_backwards_adds_nothing() -> None:
    """Time that runs backwards never creates tokens."""
    _, state = drain(SEND, None, 100.0, 20)
    assert take(SEND, state, 50.0).allowed is False


def test_a_zero_rate_refuses_for_an_hour() -> None:
    """A bucket that never refills tells the client to come back much later."""
    rule = BucketRule(rate=0.0, burst=1)
    _, state = drain(rule, None, 0.0, 1)
    decision = take(rule, state, 10.0)
    assert not decision.allowed
    assert decision.retry_after_ms == 3_600_000
    assert refill_time(rule, BucketState(0.0, 0.0)) == math.inf


def test_refill_time_is_how_long_until_the_bucket_is_full() -> None:
    """An empty 20-token bucket at 5/s is full again after 4 s; a full one at once."""
    assert refill_time(SEND, BucketState(0.0, 0.0)) == pytest.approx(4.0)
    assert refill_time(SEND, BucketState(19.0, 0.0)) == pytest.approx(0.2)
    assert refill_time(SEND, BucketState(20.0, 0.0)) == 0.0


@pytest.mark.asyncio(loop_scope="session")
async def test_the_memory_limiter_raises_rate_limited_with_retry_after() -> None:
    """The in-process limiter refuses past the burst and allows again once time passes."""
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock)
    rule = BucketRule(rate=2.0, burst=3)
    for _ in range(3):
        await limiter.hit("s:alice", rule)
    with pytest.raises(RateLimited) as refused:
        await limiter.hit("s:alice", rule)
    assert refused.value.retry_after_ms == 500
    assert refused.value.code == "RATE_LIMITED"
    clock.advance(0.5)
    await limiter.hit("s:alice", rule)


@pytest.mark.asyncio(loop_scope="session")
async def test_the_memory_limiter_keeps_buckets_apart() -> None:
    """Each key (user and action class) has its own bucket."""
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock)
    rule = BucketRule(rate=1.0, burst=1)
    await limiter.hit("s:alice", rule)
    await limiter.hit("o:alice", rule)
    await limiter.hit("s:bob", rule)
    with pytest.raises(RateLimited):
        await limiter.hit("s:alice", rule)


@pytest.mark.asyncio(loop_scope="session")
async def test_forgotten_buckets_come_back_full() -> None:
    """Sweeping full buckets away is invisible: a swept key starts with a full burst."""
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock)
    rule = BucketRule(rate=1000.0, burst=2)
    for i in range(10_001):  # enough hits to trigger a sweep
        await limiter.hit(f"o:user-{i}", rule)
        clock.advance(0.001)
    for _ in range(2):
        await limiter.hit("o:user-0", rule)
    with pytest.raises(RateLimited):
        await limiter.hit("o:user-0", rule)


@pytest.mark.asyncio(loop_scope="session")
async def test_unlimited_never_refuses() -> None:
    """`HUBBUB_RATE_LIMITS=off` lets everything through."""
    limiter = Unlimited()
    for _ in range(1000):
        await limiter.hit("s:alice", BucketRule(rate=0.0, burst=0))
