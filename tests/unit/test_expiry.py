"""Token expiry buckets (transport/websocket/expiry.py): a connection is due at its `exp`, never
before, at most a second after, and a closed one leaves nothing behind."""

from __future__ import annotations

from typing import Any

from hubbub.delivery.connection import Connection
from hubbub.transport.websocket.expiry import Expiries


def _connection(name: str) -> Connection:
    outbox: Any = None  # never used: the buckets only hold the connection
    return Connection(name, "user-" + name, name, outbox)


def test_a_connection_is_due_once_its_exp_has_passed() -> None:
    expiries = Expiries()
    now = 1_000.0
    expiries._swept = int(now)
    a = _connection("a")
    expiries.add(a, now + 2.5)
    assert expiries.due(now + 2.4) == []
    assert expiries.due(now + 2.99) == []  # still the second in which exp falls
    assert expiries.due(now + 3.0) == [a]
    assert expiries.due(now + 10) == []


def test_a_closed_connection_is_forgotten() -> None:
    expiries = Expiries()
    expiries._swept = 1_000
    a, b = _connection("a"), _connection("b")
    key = expiries.add(a, 1_005.0)
    expiries.add(b, 1_005.0)
    expiries.discard(a, key)
    expiries.discard(a, key)  # idempotent
    assert expiries.due(1_005.0) == [b]
    assert expiries._buckets == {}


def test_an_exp_already_passed_is_due_at_the_next_sweep() -> None:
    expiries = Expiries()
    expiries._swept = 1_000
    a = _connection("a")
    expiries.add(a, 990.0)
    assert expiries.due(1_001.0) == [a]


def test_a_long_gap_and_a_clock_going_back() -> None:
    expiries = Expiries()
    expiries._swept = 1_000
    a, b = _connection("a"), _connection("b")
    expiries.add(a, 1_002.0)
    expiries.add(b, 5_000_000.0)
    assert expiries.due(900.0) == []  # back in time: nothing is due early
    assert expiries.due(1_002.0) == [a]
    assert expiries.due(4_999_999.0) == []
    assert expiries.due(5_000_000.0) == [b]
