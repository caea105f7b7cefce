"""Time as hubbub keeps it: integer microseconds since the epoch; RFC 3339 on the wire."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_time(micros: int) -> str:
    """RFC 3339 UTC with microseconds, as §2 asks: ``2026-11-25T18:40:58.123456Z``."""
    seconds, fraction = divmod(micros, 1_000_000)
    return f"{utc_second(seconds)}.{fraction:06d}Z"


@lru_cache(maxsize=4096)
def utc_second(seconds: int) -> str:
    """`2026-11-25T18:40:58`: the whole second of a Unix time, in UTC."""
    # Messages of the same second share this part: formatting it costs ~2.5 µs, a cache hit
    # ~0.1 µs, and every message object formats at least one time.
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S}"


def format_optional(micros: int | None) -> str | None:
    """`format_time`, passing None through."""
    return None if micros is None else format_time(micros)


def parse_time(text: str) -> int:
    """Parse an RFC 3339 time (any offset) into UTC microseconds.

    Raises:
        ValueError: not an RFC 3339 date-time with an offset.
    """
    moment = datetime.fromisoformat(text.replace("z", "Z"))
    if moment.tzinfo is None:
        raise ValueError("time needs an offset, e.g. Z")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
