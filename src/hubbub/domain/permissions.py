"""Who may do what in a conversation: the table of PROTOCOL.md §5 as data.

Rules:
- Abilities are `read`, `send` and `moderate`; each role has a fixed set.
- A non-member may read and join a `channel` (public); nobody else joins on their own.
- Only an `owner` makes (or unmakes) `owner`s and `admin`s; moderators manage the rest but
  never someone ranked at or above themselves.
- Anyone may leave, except a banned member: leaving would lift its own ban.
- The creator of a `group` or `channel` is its `owner`; the two members of a `direct`
  conversation are peers, both `member`: neither moderates the other.
"""

from __future__ import annotations

from enum import Enum

from hubbub.domain.errors import Forbidden
from hubbub.protocol.objects import Kind, Role


class Ability(Enum):
    READ = "read"
    SEND = "send"
    MODERATE = "moderate"


_ABILITIES: dict[Role, frozenset[Ability]] = {
    "owner": frozenset(Ability),
    "admin": frozenset(Ability),
    "moderator": frozenset(Ability),
    "member": frozenset({Ability.READ, Ability.SEND}),
    "read_only": frozenset({Ability.READ}),
    "banned": frozenset(),
}

# Higher ranks may manage lower ones; used for role changes and removals.
_RANK: dict[Role, int] = {
    "owner": 5, "admin": 4, "moderator": 3, "member": 2, "read_only": 1, "banned": 0,
}


def creator_role(kind: Kind) -> Role:
    """The role a new conversation gives its creator (the others start as `member`)."""
    return "member" if kind == "direct" else "owner"


def can(role: Role | None, ability: Ability) -> bool:
    """Whether a member with `role` (None: not a member) has `ability`."""
    return role is not None and ability in _ABILITIES[role]


def can_read(kind: Kind, role: Role | None) -> bool:
    """Read access: members with `read`, and anyone but the banned for a public channel."""
    if role is None:
        return kind == "channel"
    return can(role, Ability.READ)


def require(role: Role | None, ability: Ability, *, what: str) -> None:
    """Raise Forbidden unless `role` has `ability`; `what` names the refused action."""
    if not can(role, ability):
        raise Forbidden(f"not allowed to {what} in this conversation")


def require_read(kind: Kind, role: Role | None) -> None:
    """Raise Forbidden unless the conversation may be read."""
    if not can_read(kind, role):
        raise Forbidden("not allowed to read this conversation")


# JoinConversation succeeds exactly where reading does: members who may read, or anyone
# but the banned into a channel. One rule under the name each caller asks by.
may_join = can_read


def check_role_change(actor: Role | None, target_current: Role | None, new_role: Role) -> None:
    """Whether `actor` may set a member's role to `new_role` (§7 PUT members).

    Raises:
        Forbidden: the actor lacks `moderate`, or the change touches a rank it does not outrank.
    """
    if not can(actor, Ability.MODERATE):
        raise Forbidden("managing members needs the moderate permission")
    assert actor is not None
    if new_role in ("owner", "admin") or target_current in ("owner", "admin"):
        if actor != "owner":
            raise Forbidden("only an owner makes or changes owners and admins")
        return
    if target_current is not None and _RANK[target_current] >= _RANK[actor]:
        raise Forbidden("cannot change the role of a member ranked at or above you")
    if _RANK[new_role] >= _RANK[actor]:
        raise Forbidden("cannot grant a role at or above your own")


def check_removal(actor: Role | None, target: Role, *, is_self: bool) -> None:
    """Whether a member may be removed: anyone may leave; others need `moderate` and rank.

    A banned member cannot leave: leaving would delete the ban, and a channel could then be
    joined again. The ban is lifted by a moderator (a role change) or by removal.
    """
    if is_self:
        if target == "banned":
            raise Forbidden("a ban is lifted by a moderator, not by leaving")
        return
    if not can(actor, Ability.MODERATE):
        raise Forbidden("removing members needs the moderate permission")
    assert actor is not None
    if _RANK[target] >= _RANK[actor]:
        raise Forbidden("cannot remove a member ranked at or above you")
