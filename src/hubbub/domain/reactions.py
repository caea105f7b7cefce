"""Bounds on the reactions of one message (docs/DECISIONS.md, "Reactions").

Every history page, sync page and edit broadcast carries a message's whole reaction list,
so its size is bounded where reactions are added: at most `MAX_EMOJI_PER_MESSAGE` distinct
emoji on a message, and at most `MAX_REACTIONS_PER_USER` of them by one user.
"""

from __future__ import annotations

from hubbub.domain.errors import Conflict
from hubbub.domain.limits import MAX_EMOJI_PER_MESSAGE, MAX_REACTIONS_PER_USER

__all__ = ["MAX_EMOJI_PER_MESSAGE", "MAX_REACTIONS_PER_USER", "check_new_reaction"]


def check_new_reaction(distinct_emoji: int, emoji_present: bool, by_user: int) -> None:
    """Whether one more reaction (not already there) may be added to a message that has
    `distinct_emoji` different emoji (`emoji_present`: this one among them) and
    `by_user` reactions of the reacting user.

    Raises:
        Conflict: naming the limit that would be passed.
    """
    if by_user >= MAX_REACTIONS_PER_USER:
        raise Conflict(f"at most {MAX_REACTIONS_PER_USER} reactions per user on one message "
                       "- at `$.emoji`")
    if not emoji_present and distinct_emoji >= MAX_EMOJI_PER_MESSAGE:
        raise Conflict(f"at most {MAX_EMOJI_PER_MESSAGE} different emoji on one message "
                       "- at `$.emoji`")
