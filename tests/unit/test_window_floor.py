"""The created_at floor of PostgreSQL's rank window (adapters/sql/window_floor.py), as
arithmetic on a histogram: where the newest `wanted` of the estimated matches begin; and
the bound on a word's messages that skips the estimate (adapters/sql/lexemes.py)."""

from __future__ import annotations

import pytest

from hubbub.adapters.sql.lexemes import Lexemes
from hubbub.adapters.sql.window_floor import floor_of, parse_bounds

# Ten buckets of as many messages each, times 0 to 100.
TENTHS = list(range(0, 101, 10))


def test_the_floor_leaves_the_wanted_share_above_it() -> None:
    assert floor_of(TENTHS, None, 10, 100) == 90
    assert floor_of(TENTHS, None, 25, 100) == 75


def test_below_a_top_the_share_counts_from_the_top() -> None:
    """Half the messages lie at or below 50: a tenth of all of them is a fifth of those."""
    assert floor_of(TENTHS, 50, 10, 100) == 40
    assert floor_of(TENTHS, 55, 10, 100) == 45


def test_no_floor_where_it_would_take_half_the_matches_or_more() -> None:
    assert floor_of(TENTHS, None, 50, 100) is None
    assert floor_of(TENTHS, None, 49, 100) == 51
    assert floor_of(TENTHS, 20, 10, 100) is None  # a fifth of 100 below the top: 20


def test_no_floor_without_a_histogram() -> None:
    assert floor_of([], None, 10, 1000) is None
    assert floor_of([5], None, 10, 1000) is None
    assert floor_of(TENTHS, None, 10, 0) is None


def test_uneven_buckets_are_interpolated_within() -> None:
    """Recent messages crowd the last bucket: the floor falls inside it."""
    assert floor_of([0, 900, 1000], None, 25, 100) == 950


def test_histogram_bounds_parse_from_their_text() -> None:
    assert parse_bounds("{1793818719261268,1793823718261401}") == [
        1793818719261268, 1793823718261401]
    assert parse_bounds(None) == []


def test_a_word_is_held_at_most_by_its_lexemes_and_the_unlisted_ones() -> None:
    """A prefix sums every listed lexeme it begins; any word adds the least listed share
    (unlisted ones may hold it); several words: the rarest bounds them all."""
    known = Lexemes(["deploy", "deployed", "depth", "zebra"], [0.1, 0.05, 0.2, 0.3],
                    least=0.01, messages=1000)
    assert known.at_most(["deploy"]) == pytest.approx(160)
    assert known.at_most(["dep"]) == pytest.approx(360)
    assert known.at_most(["deployed"]) == pytest.approx(60)
    assert known.at_most(["zz"]) == pytest.approx(10)
    assert known.at_most(["zebra", "deployed"]) == pytest.approx(60)
    assert known.at_most([]) == 0  # no word: nothing to fill a window with
