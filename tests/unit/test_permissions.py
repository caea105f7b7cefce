"""The permission rules of PROTOCOL.md §5, checked against the table itself."""

from __future__ import annotations

from typing import get_args

import pytest

from hubbub.domain.errors import Forbidden
from hubbub.domain.permissions import (
    Ability,
    can,
    can_read,
    check_removal,
    check_role_change,
    creator_role,
    may_join,
    require,
    require_read,
)
from hubbub.protocol.objects import Kind, Role

ROLES: list[Role] = list(get_args(Role))
KINDS: list[Kind] = list(get_args(Kind))

# PROTOCOL.md §5, row by row: read, send, moderate.
TABLE: dict[Role, tuple[bool, bool, bool]] = {
    "owner": (True, True, True),
    "admin": (True, True, True),
    "moderator": (True, True, True),
    "member": (True, True, False),
    "read_only": (True, False, False),
    "banned": (False, False, False),
}


def test_the_table_covers_every_role() -> None:
    """Every role of the protocol has a row."""
    assert sorted(TABLE) == sorted(ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_abilities_follow_the_table(role: Role) -> None:
    """`can` answers exactly the §5 table for each role."""
    read, send, moderate = TABLE[role]
    assert can(role, Ability.READ) is read
    assert can(role, Ability.SEND) is send
    assert can(role, Ability.MODERATE) is moderate


@pytest.mark.parametrize("ability", list(Ability))
def test_non_members_have_no_ability(ability: Ability) -> None:
    """Without a membership nothing is granted by role."""
    assert can(None, ability) is False


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("role", ROLES)
def test_members_read_by_role_in_every_kind(kind: Kind, role: Role) -> None:
    """A member's read access depends on its role alone, whatever the kind."""
    assert can_read(kind, role) is TABLE[role][0]


@pytest.mark.parametrize(("kind", "readable"), [("channel", True), ("group", False),
                                                ("direct", False)])
def test_only_channels_are_readable_by_outsiders(kind: Kind, readable: bool) -> None:
    """Channels are public; groups and direct conversations are not."""
    assert can_read(kind, None) is readable


def test_a_banned_member_cannot_read_even_a_channel() -> None:
    """A ban outweighs a channel's openness."""
    assert can_read("channel", "banned") is False
    with pytest.raises(Forbidden):
        require_read("channel", "banned")


@pytest.mark.parametrize(("kind", "role", "allowed"), [
    ("channel", None, True),
    ("group", None, False),
    ("direct", None, False),
    ("channel", "banned", False),
    ("group", "banned", False),
    ("group", "read_only", True),
    ("group", "member", True),
    ("direct", "member", True),
    ("channel", "owner", True),
])
def test_who_may_join(kind: Kind, role: Role | None, allowed: bool) -> None:
    """Outsiders join channels only; members join (subscribe) when they may read."""
    assert may_join(kind, role) is allowed


def test_require_names_the_refused_action() -> None:
    """`require` raises Forbidden saying what was refused."""
    with pytest.raises(Forbidden, match="send messages"):
        require("read_only", Ability.SEND, what="send messages")
    require("member", Ability.SEND, what="send messages")


@pytest.mark.parametrize("new_role", ["owner", "admin"])
@pytest.mark.parametrize("actor", ["admin", "moderator", "member", "read_only", "banned", None])
def test_only_owners_make_owners_and_admins(actor: Role | None, new_role: Role) -> None:
    """Granting `owner` or `admin` is refused to everyone but an owner."""
    with pytest.raises(Forbidden):
        check_role_change(actor, "member", new_role)
    check_role_change("owner", "member", new_role)


@pytest.mark.parametrize("target", ["owner", "admin"])
def test_only_owners_change_owners_and_admins(target: Role) -> None:
    """An admin cannot demote an owner or a fellow admin."""
    with pytest.raises(Forbidden):
        check_role_change("admin", target, "member")
    check_role_change("owner", target, "member")


@pytest.mark.parametrize("actor", ["member", "read_only", "banned", None])
def test_managing_members_needs_moderate(actor: Role | None) -> None:
    """Without `moderate`, no role may be set on anyone."""
    for new_role in ("member", "read_only", "banned"):
        with pytest.raises(Forbidden):
            check_role_change(actor, "member", new_role)
        with pytest.raises(Forbidden):
            check_role_change(actor, None, new_role)


def test_moderators_manage_only_lower_ranks() -> None:
    """A moderator sets member, read_only and banned on lower ranks, never its own rank."""
    for new_role in ("member", "read_only", "banned"):
        check_role_change("moderator", "member", new_role)
        check_role_change("moderator", None, new_role)
    check_role_change("moderator", "banned", "member")
    with pytest.raises(Forbidden):
        check_role_change("moderator", "member", "moderator")
    with pytest.raises(Forbidden):
        check_role_change("moderator", "moderator", "member")


def test_admins_grant_moderator() -> None:
    """An admin outranks a moderator, so it may make and unmake one."""
    check_role_change("admin", "member", "moderator")
    check_role_change("admin", "moderator", "member")


@pytest.mark.parametrize("role", [r for r in ROLES if r != "banned"])
def test_anyone_may_leave(role: Role) -> None:
    """Removing oneself needs no permission."""
    check_removal(role, role, is_self=True)


def test_a_banned_member_cannot_leave() -> None:
    """Leaving would delete the ban, so a banned member may not remove itself."""
    with pytest.raises(Forbidden, match="ban"):
        check_removal("banned", "banned", is_self=True)


@pytest.mark.parametrize(("actor", "target", "allowed"), [
    ("owner", "admin", True),
    ("owner", "owner", False),
    ("admin", "moderator", True),
    ("admin", "admin", False),
    ("admin", "owner", False),
    ("moderator", "member", True),
    ("moderator", "banned", True),
    ("moderator", "moderator", False),
    ("member", "read_only", False),
    ("read_only", "member", False),
    ("banned", "member", False),
    (None, "member", False),
])
def test_removing_others_needs_moderate_and_rank(actor: Role | None, target: Role,
                                                 allowed: bool) -> None:
    """Others are removed only by a role with `moderate` ranked above them."""
    if allowed:
        check_removal(actor, target, is_self=False)
    else:
        with pytest.raises(Forbidden):
            check_removal(actor, target, is_self=False)


@pytest.mark.parametrize(("kind", "role"), [("group", "owner"), ("channel", "owner"),
                                            ("direct", "member")])
def test_the_creator_owns_groups_and_channels_but_is_a_peer_in_direct(kind: Kind,
                                                                       role: Role) -> None:
    """A direct conversation has no owner: its creator is a `member`, without `moderate`."""
    assert creator_role(kind) == role
    assert can(creator_role(kind), Ability.MODERATE) == (kind != "direct")
