"""The caps on a message's reactions (domain/reactions.py), decided from the counts the
store takes."""

from __future__ import annotations

import pytest

from hubbub.domain.errors import Conflict
from hubbub.domain.reactions import (
    MAX_EMOJI_PER_MESSAGE,
    MAX_REACTIONS_PER_USER,
    check_new_reaction,
)


def test_below_both_caps_a_reaction_is_allowed() -> None:
    """One under each cap still takes one more."""
    check_new_reaction(MAX_EMOJI_PER_MESSAGE - 1, False, MAX_REACTIONS_PER_USER - 1)


def test_a_new_emoji_past_the_message_cap_is_refused() -> None:
    """The message's distinct emoji are full: a new one is Conflict naming the cap."""
    with pytest.raises(Conflict, match=f"at most {MAX_EMOJI_PER_MESSAGE} different emoji"):
        check_new_reaction(MAX_EMOJI_PER_MESSAGE, False, 0)


def test_an_emoji_already_there_adds_no_distinct_one() -> None:
    """Joining others on an emoji present is allowed however full the message is."""
    check_new_reaction(MAX_EMOJI_PER_MESSAGE, True, 0)


def test_the_user_cap_holds_for_emoji_already_there_too() -> None:
    """A user at their cap may not add even a present emoji; the error names that cap."""
    with pytest.raises(Conflict, match=f"at most {MAX_REACTIONS_PER_USER} reactions per user"):
        check_new_reaction(1, True, MAX_REACTIONS_PER_USER)


def test_the_per_user_cap_leaves_room_for_others() -> None:
    """One user alone can never fill the message's emoji."""
    assert MAX_REACTIONS_PER_USER < MAX_EMOJI_PER_MESSAGE
