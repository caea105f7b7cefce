"""The CI benchmark smoke fails only when hubbub errors, and prints a ratio, not a time."""

from __future__ import annotations

from typing import Any

from bench.smoke import verdict


def _row(hubbub_ok: int, reference_ok: int) -> dict[str, Any]:
    return {"scenario": "R=100 M=2000", "kind": "load",
            "hubbub": {"ok": hubbub_ok, "deliveries_per_s": 300_000.0},
            "reference": {"ok": reference_ok, "deliveries_per_s": 150_000.0}}


def test_a_clean_run_prints_the_ratio() -> None:
    clean, lines = verdict({"summary": [_row(1, 1)]})
    assert clean
    assert lines == ["benchmark smoke: R=100 M=2000: hubbub / Node ws deliveries/s = 2.00x "
                     "(one run each, same machine, same run)"]


def test_a_failed_reference_passes_without_a_ratio() -> None:
    clean, lines = verdict({"summary": [_row(1, 0)]})
    assert clean
    assert "no ratio" in lines[0]
    assert "300,000" in lines[0]


def test_hubbub_without_a_successful_run_fails() -> None:
    clean, lines = verdict({"summary": [_row(0, 1), _row(1, 1)]})
    assert not clean
    assert lines[0].endswith("hubbub had no successful run")


def test_a_result_without_load_scenarios_fails() -> None:
    clean, lines = verdict({"summary": [{"scenario": "idle", "kind": "idle"}]})
    assert not clean
    assert lines == ["benchmark smoke: the kit reported no load scenario"]
