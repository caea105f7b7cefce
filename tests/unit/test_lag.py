"""The periodic check's rule (delivery/repair.py `Lag`): which conversations it repairs."""

from __future__ import annotations

from hubbub.delivery.repair import Lag


def test_lag_repairs_a_conversation_stuck_behind_the_store() -> None:
    """Stored ahead at one check, nothing more delivered a hold later: repair."""
    lag = Lag(hold=1.0)
    assert lag.observe("c", stored=5, delivered=4, now=0.0) is False
    assert lag.observe("c", stored=5, delivered=4, now=0.5) is False
    assert lag.observe("c", stored=5, delivered=4, now=1.0) is True


def test_lag_waits_while_deliveries_move() -> None:
    """Delivered versions moving mean events are flowing: the gate watches those."""
    lag = Lag(hold=1.0)
    lag.observe("c", stored=10, delivered=4, now=0.0)
    assert lag.observe("c", stored=12, delivered=8, now=2.0) is False
    assert lag.observe("c", stored=12, delivered=8, now=2.5) is False
    assert lag.observe("c", stored=12, delivered=8, now=3.0) is True


def test_lag_forgets_a_conversation_that_caught_up() -> None:
    """Once delivered reaches the stored version, the clock starts again next time."""
    lag = Lag(hold=1.0)
    lag.observe("c", stored=5, delivered=4, now=0.0)
    assert lag.observe("c", stored=5, delivered=5, now=1.0) is False
    assert lag.observe("c", stored=6, delivered=5, now=2.0) is False
    assert lag.observe("c", stored=6, delivered=5, now=3.0) is True
