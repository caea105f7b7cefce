"""The Redis adapters' Lua scripts are files (adapters/redis/scripts/), read with their
includes put in place."""

from __future__ import annotations

from importlib import resources

import pytest

from hubbub.adapters.redis.scripts import INCLUDE, lua

SCRIPTS = resources.files("hubbub.adapters.redis").joinpath("scripts")
NAMES = sorted(entry.name.removesuffix(".lua") for entry in SCRIPTS.iterdir()
               if entry.name.endswith(".lua"))


def test_every_script_of_the_adapters_is_a_file() -> None:
    """The counting steps, the token bucket and the typing step each have their file."""
    assert set(NAMES) == {
        "live_total", "token_bucket", "typing", *(f"counts_{step}" for step in (
            "add", "remove", "online", "resync", "heartbeat", "reap", "leave"))}


@pytest.mark.parametrize("name", NAMES)
def test_a_loaded_script_has_its_includes_in_place(name: str) -> None:
    """No include line is left, and a script that includes `live_total` defines it before
    its own first line."""
    raw = SCRIPTS.joinpath(name + ".lua").read_text(encoding="utf-8")
    source = lua(name)
    assert not [line for line in source.splitlines() if line.startswith(INCLUDE)]
    if INCLUDE + "live_total.lua" in raw.splitlines():
        own_code = next(line for line in raw.splitlines()
                        if line and not line.startswith("--"))
        assert source.index("local function live_total(") < source.index(own_code)
        assert source.count("local function live_total(") == 1
