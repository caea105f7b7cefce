"""Display names (domain/names.py): what a label keeps, drops and how it is bounded."""

from __future__ import annotations

import random

import pytest

from hubbub.domain.names import MAX_NAME_CHARS, _by_character, display_name, normalise_name

# "mikhaham" (I want), spelled with a ZERO WIDTH NON-JOINER after its first two letters.
PERSIAN = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"


@pytest.mark.parametrize(("raw", "expected"), [
    ("alice", "alice"),
    ("  a \n\t b\u2028c\u3000 ", "a b c"),  # every kind of whitespace is one space
    ("a\u202eb\u202dc\u2066d\u2069e\u200ef\u200fg\u061ch", "abcdefgh"),  # bidi controls
    ("in\u200bvis\u2060ible\ufeff\u00ad", "invisible"),  # zero-width and soft hyphen
    ("bell\x07nul\x00esc\x1b", "bellnulesc"),  # controls
    ("lone\ud800\udfff", "lone"),  # lone surrogates
    ("flag\U0001F3F4\U000E0067\U000E0062\U000E007F", "flag\U0001F3F4"),  # tag characters
    ("Zoe\u0301", "Zoé"),  # NFC
    ("\U0001F469\u200d\U0001F467 \u2764\ufe0f", "\U0001F469\u200d\U0001F467 \u2764\ufe0f"),
    (PERSIAN, PERSIAN),  # the non-joiner is part of the spelling
    ("\u200d joined \u200c", "joined"),  # a joiner at an end joins nothing
])
def test_normalise_keeps_a_label(raw: str, expected: str) -> None:
    """Controls, format characters and lone surrogates go, whitespace collapses, NFC; the
    joiners and variation selectors that emoji and scripts need stay."""
    assert normalise_name(raw) == expected


def test_a_printable_ascii_name_comes_out_as_the_full_rules_make_it() -> None:
    """Printable ASCII takes a shortcut; it must spell what the character rules spell."""
    rng = random.Random(17)
    printable = [chr(c) for c in range(0x20, 0x7F)] + [" "] * 20
    names = ["".join(rng.choices(printable, k=rng.randrange(0, 40))) for _ in range(2000)]
    for raw in [*names, "", " ", "   a  ", "a b", "~!@#"]:
        assert normalise_name(raw) == _by_character(raw), raw


def test_the_result_is_encodable() -> None:
    """Whatever comes in, the name can be stored and sent as UTF-8."""
    every = "".join(chr(c) for c in range(0, 0x3000)) + "\ud800\udbff\udc00\udfff"
    normalise_name(every).encode("utf-8")


def test_a_display_name_is_bounded_by_code_points() -> None:
    """100 code points; a character outside the BMP is one, so it is never split."""
    assert display_name("n" * 150) == "n" * MAX_NAME_CHARS
    assert display_name("a" * 99 + "\U0001F600" * 3) == "a" * 99 + "\U0001F600"
    assert display_name("a" * 99 + " b") == "a" * 99  # no trailing space after the cut
    assert display_name("a" * 99 + "\u200d\U0001F600") == "a" * 99  # nor a joiner


@pytest.mark.parametrize("raw", [None, "", "   ", "\u202e\u200b\n\x1b", "\ud800"])
def test_nothing_left_is_no_name(raw: str | None) -> None:
    """An empty result is None, so the default name applies."""
    assert display_name(raw) is None
