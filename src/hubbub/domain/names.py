"""Display names (a token's `name`, a conversation's `name`): labels, never markup.

A name is shown beside other people's text, so it must not be able to reorder that text
(bidi overrides), hide in it (zero-width and other invisible format characters), break it
into lines, or carry what the store and the JSON encoder cannot hold (U+0000, lone
surrogates: a JWT's JSON may spell `"\\ud800"`, which Python decodes to a lone surrogate).

Kept: letters, marks, symbols and emoji, including what emoji sequences and some scripts
need — ZERO WIDTH JOINER U+200D (family and profession emoji) and ZERO WIDTH NON-JOINER
U+200C (Persian and Indic spelling); the variation selectors are marks, not format
characters, and stay anyway. Dropped: every other format character (category Cf: the bidi
embeddings, overrides, isolates and marks U+200E/F, U+202A–E, U+2066–9, U+061C; U+200B,
U+2060, U+FEFF; the tag characters U+E0000–E007F, which can spell invisible ASCII — a
subdivision flag shows as a plain black flag), controls (Cc) and lone surrogates (Cs).
"""

from __future__ import annotations

import unicodedata

from hubbub.domain.limits import MAX_NAME_CHARS

__all__ = ["MAX_NAME_CHARS", "display_name", "normalise_name"]

# PROTOCOL.md §2: a conversation's name is 1–MAX_NAME_CHARS characters; a user's name is
# bounded the same. Counted in code points (a Python str's length).

# Format characters that are part of legitimate spelling (see the module docstring).
_KEPT_FORMAT = frozenset({"\u200c", "\u200d"})
_DROPPED = frozenset({"Cc", "Cf", "Cs"})
# Joiners at either end of a name join nothing.
_EDGES = " \u200c\u200d"


def normalise_name(raw: str) -> str:
    """`raw` in NFC without the characters a label may not hold, every run of whitespace
    (newlines included) one space, stripped (of joiners too). May be empty; not bounded."""
    if raw.isascii() and raw.isprintable():
        # Most names: nothing to drop (printable ASCII holds no Cc, Cf or Cs character
        # and no space but " "), and NFC leaves ASCII as it is, so `_by_character` would
        # only collapse the spaces, at ~0.3 µs a character; every handshake names its user.
        return " ".join(raw.split())
    return _by_character(raw)


def _by_character(raw: str) -> str:
    """`normalise_name` for any text: each character judged by its Unicode category."""
    kept = "".join(ch for ch in raw if ch.isspace() or ch in _KEPT_FORMAT
                   or unicodedata.category(ch) not in _DROPPED)
    return " ".join(unicodedata.normalize("NFC", kept).split()).strip(_EDGES)


def display_name(raw: str | None) -> str | None:
    """A user's display name from a token claim: normalised and cut to `MAX_NAME_CHARS`;
    None when nothing is left (the store then names the user after its id)."""
    if raw is None:
        return None
    # A cut may end on a space or a joiner.
    return normalise_name(raw)[:MAX_NAME_CHARS].rstrip(_EDGES) or None
