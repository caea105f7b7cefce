"""Time on the wire (PROTOCOL.md §2): RFC 3339 UTC with microseconds, from integer
microseconds and back."""

from __future__ import annotations

import re

import pytest

from hubbub.domain.clock import format_optional, format_time, parse_time

WIRE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.mark.parametrize(("micros", "text"), [
    (0, "1970-01-01T00:00:00.000000Z"),
    (1, "1970-01-01T00:00:00.000001Z"),
    (999_999, "1970-01-01T00:00:00.999999Z"),
    (1_795_632_058_123_456, "2026-11-25T18:40:58.123456Z"),
    (-1, "1969-12-31T23:59:59.999999Z"),
    (253_402_300_799_999_999, "9999-12-31T23:59:59.999999Z"),
])
def test_format_time_is_rfc3339_utc_with_microseconds(micros: int, text: str) -> None:
    """Always six fractional digits and a `Z`, as §2 shows."""
    assert format_time(micros) == text
    assert WIRE.match(format_time(micros))


@pytest.mark.parametrize("micros", [0, 1, 999_999, 1_795_632_058_123_456, 1_000_000_000_000])
def test_format_and_parse_round_trip(micros: int) -> None:
    """Parsing what was formatted gives back the same microsecond."""
    assert parse_time(format_time(micros)) == micros


def test_format_optional_passes_none_through() -> None:
    """Unset times (`edited_at`, `deleted_at`) stay null."""
    assert format_optional(None) is None
    assert format_optional(0) == "1970-01-01T00:00:00.000000Z"


@pytest.mark.parametrize("text", [
    "2026-11-25T18:40:58.123456Z",
    "2026-11-25T18:40:58.123456z",
    "2026-11-25t18:40:58.123456Z",
    "2026-11-25T18:40:58.123456+00:00",
    "2026-11-25T19:40:58.123456+01:00",
    "2026-11-25T13:10:58.123456-05:30",
])
def test_parse_time_accepts_any_offset(text: str) -> None:
    """Every offset lands on the same UTC instant."""
    assert parse_time(text) == 1_795_632_058_123_456


def test_parse_time_without_a_fraction() -> None:
    """Seconds without a fraction are whole seconds."""
    assert parse_time("2026-11-25T18:40:58Z") == 1_795_632_058_000_000


@pytest.mark.parametrize("text", [
    "2026-11-25T18:40:58",
    "2026-11-25",
    "yesterday",
    "",
    "2026-13-01T00:00:00Z",
    "2026-11-25T25:00:00Z",
])
def test_parse_time_refuses_what_is_not_a_time_with_offset(text: str) -> None:
    """Missing offsets and impossible dates raise ValueError (the caller's BAD_REQUEST)."""
    with pytest.raises(ValueError, match=r".+"):
        parse_time(text)
