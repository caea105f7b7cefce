"""The key of a direct conversation's pair (adapters/sql/conversations.py): one per pair,
bounded, whatever the backend's user ids hold."""

from __future__ import annotations

from hubbub.adapters.sql.conversations import direct_key


def test_the_key_is_the_pair_s_in_either_order() -> None:
    assert direct_key("auth0|1", "42") == direct_key("42", "auth0|1")


def test_ids_holding_the_old_separator_do_not_collide() -> None:
    """With "low:high", the pairs (a:b, c) and (a, b:c) had one key."""
    assert direct_key("a:b", "c") != direct_key("a", "b:c")


def test_the_key_is_bounded() -> None:
    key = direct_key("x" * 128, "y" * 128)
    assert len(key) == 64
    assert key == direct_key("y" * 128, "x" * 128)
