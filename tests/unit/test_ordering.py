"""The version gate that restores each conversation's event order (delivery/ordering.py)."""

from __future__ import annotations

from hubbub.delivery.ordering import MAX_HELD, OrderStats, VersionGate

HOLD = 0.25


def gate() -> VersionGate[str]:
    return VersionGate(HOLD, OrderStats())


def test_the_first_event_sets_the_baseline() -> None:
    """Whatever version comes first after subscribing is delivered at once."""
    g = gate()
    assert g.offer(41, "v41", now=0.0) == ["v41"]
    assert g.next_version == 42


def test_consecutive_versions_pass_straight_through() -> None:
    """Events in order are never held."""
    g = gate()
    released = [e for v in range(1, 6) for e in g.offer(v, f"v{v}", now=0.0)]
    assert released == ["v1", "v2", "v3", "v4", "v5"]
    assert g.deadline is None


def test_an_early_event_waits_for_the_missing_one() -> None:
    """Version 3 arriving before 2 is held, then both leave in order when 2 comes."""
    g = gate()
    g.offer(1, "v1", now=0.0)
    assert g.offer(3, "v3", now=0.01) == []
    assert g.offer(2, "v2", now=0.02) == ["v2", "v3"]
    assert g.holding == 0


def test_a_gap_is_given_up_after_the_hold() -> None:
    """A version that never arrives delays its successors by the hold time, no longer."""
    g = gate()
    g.offer(1, "v1", now=0.0)
    g.offer(3, "v3", now=1.0)
    g.offer(4, "v4", now=1.1)
    assert g.deadline == 1.0 + HOLD
    assert g.expire(now=1.0 + HOLD - 0.001) == []
    assert g.expire(now=1.0 + HOLD) == ["v3", "v4"]
    assert g.next_version == 5


def test_an_event_older_than_what_was_delivered_is_dropped() -> None:
    """Delivering a late event would break the order; its gap was seen by the client."""
    stats = OrderStats()
    g: VersionGate[str] = VersionGate(HOLD, stats)
    g.offer(1, "v1", now=0.0)
    g.offer(3, "v3", now=0.0)
    g.expire(now=HOLD)
    assert g.offer(2, "v2", now=HOLD + 0.1) == []
    assert stats.late_dropped == 1
    assert stats.skipped_versions == 1


def test_a_duplicate_is_dropped() -> None:
    """The same version twice is delivered once, whether held or already delivered."""
    g = gate()
    g.offer(1, "v1", now=0.0)
    g.offer(3, "v3", now=0.0)
    assert g.offer(3, "v3 again", now=0.0) == []
    assert g.offer(1, "v1 again", now=0.0) == []
    assert g.offer(2, "v2", now=0.0) == ["v2", "v3"]


def test_each_gap_gets_its_own_hold() -> None:
    """A second gap behind the first is waited for from when its successor arrived."""
    g = gate()
    g.offer(1, "v1", now=0.0)
    g.offer(3, "v3", now=1.0)
    g.offer(6, "v6", now=1.2)
    assert g.expire(now=1.0 + HOLD) == ["v3"]
    assert g.deadline == 1.2 + HOLD
    assert g.offer(4, "v4", now=1.3) == ["v4"]
    assert g.offer(5, "v5", now=1.3) == ["v5", "v6"]


def test_drain_releases_everything_in_order() -> None:
    """After a bus outage the held events leave at once, in version order."""
    g = gate()
    g.offer(1, "v1", now=0.0)
    for v in (7, 4, 5):
        g.offer(v, f"v{v}", now=0.0)
    assert g.drain(now=0.0) == ["v4", "v5", "v7"]
    assert g.holding == 0


def test_too_many_held_events_give_up_the_gap_at_once() -> None:
    """Memory stays bounded when a gap never fills under a steady stream."""
    g = gate()
    g.offer(1, "v1", now=0.0)
    released: list[str] = []
    for v in range(3, 3 + MAX_HELD + 1):
        released += g.offer(v, f"v{v}", now=0.0)
    assert released[0] == "v3"
    assert len(released) == MAX_HELD + 1
    assert g.holding == 0


# -- with a repair (delivery/repair.py) ------------------------------------------------------


def waiting_gate(stats: OrderStats | None = None) -> VersionGate[str]:
    return VersionGate(HOLD, stats or OrderStats(), wait_for_baseline=True)


def test_a_waiting_gate_holds_events_until_the_baseline() -> None:
    """Until the join tells the baseline nothing passes; then what the joiner already has
    is dropped and what follows is delivered."""
    g = waiting_gate()
    assert g.offer(5, "v5", now=0.0) == []
    assert g.offer(4, "v4", now=0.0) == []
    assert g.start_at(4, now=0.01) == ["v5"]
    assert g.next_version == 6
    assert g.offer(6, "v6", now=0.02) == ["v6"]


def test_the_first_baseline_wins() -> None:
    """A later join's answer does not move a baseline already set."""
    g = waiting_gate()
    g.start_at(3, now=0.0)
    assert g.start_at(9, now=0.0) == []
    assert g.offer(4, "v4", now=0.0) == ["v4"]


def test_a_baseline_that_never_comes_is_given_up_after_the_hold() -> None:
    """Without the join's answer the first held event sets the baseline, as without a
    repair, and no version counts as skipped."""
    stats = OrderStats()
    g = waiting_gate(stats)
    g.offer(8, "v8", now=1.0)
    g.offer(7, "v7", now=1.1)
    assert g.expire(now=1.0 + HOLD) == ["v7", "v8"]
    assert stats.skipped_versions == 0


def test_a_paused_gate_holds_even_the_next_version() -> None:
    """While a repair reads, nothing passes; what it delivered is dropped after it, and the
    run that follows is released when it ends."""
    g = gate()
    g.offer(1, "v1", now=0.0)
    assert g.pause() == 1
    assert g.offer(2, "v2 from the bus", now=0.0) == []
    assert g.offer(4, "v4", now=0.0) == []
    assert g.expire(now=10.0) == [], "a paused gate gives nothing up"
    g.advance(3)  # the repair delivered versions 2 and 3
    assert g.holding == 1
    assert g.resume(now=10.0) == ["v4"]
    assert g.next_version == 5


def test_a_repair_that_found_nothing_leaves_the_order_as_it_was() -> None:
    """Advancing to a version already delivered changes nothing."""
    g = gate()
    g.offer(1, "v1", now=0.0)
    g.pause()
    g.advance(1)
    assert g.resume(now=0.0) == []
    assert g.offer(2, "v2", now=0.0) == ["v2"]


def test_events_held_across_a_repair_get_a_fresh_hold() -> None:
    """Those still behind a gap when the repair ends wait a full hold from then, so one
    repair does not set off the next at once."""
    g = gate()
    g.offer(1, "v1", now=0.0)
    g.pause()
    g.offer(5, "v5", now=0.0)
    g.advance(3)
    assert g.resume(now=2.0) == []
    assert g.deadline == 2.0 + HOLD


def test_too_many_held_events_wait_for_a_running_repair() -> None:
    """The memory bound does not give a gap up while a repair is filling it."""
    g = gate()
    g.offer(1, "v1", now=0.0)
    g.pause()
    for v in range(3, 3 + MAX_HELD + 1):
        assert g.offer(v, f"v{v}", now=0.0) == []
    g.advance(2)
    assert len(g.resume(now=0.0)) == MAX_HELD + 1
