"""Bounds on the reactions of one message (docs/DECISIONS.md, "Reactions").

Every history page, sync page and edit broadcast carries a message's whole reaction list,
so its size is bounded where reactions are added: at most `MAX_EMOJI_PER_MESSAGE` distinct
emoji on a message, and at most `MAX_REACTIONS_PER_USER` of them by one user.
"""

from __future__ import annotations

from hubbub.domain.errors import Conflict

# Room for every emoji a conversation really uses on one message (Slack allows 50 distinct
# reactions per message, Discord 20). With emoji of at most 32 characters a full list
# costs ~9.5 KiB of a message object (measured: 50 emoji of 32 four-byte characters), plus
# 39 bytes per further user on an emoji present.
MAX_EMOJI_PER_MESSAGE = 50
# A person expresses a few reactions to one message, not dozens; 20 keeps one user from
# taking most of the message's emoji on their own (the cap above is shared).
MAX_REACTIONS_PER_USER = 20


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
