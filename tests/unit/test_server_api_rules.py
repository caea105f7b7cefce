"""The server API's pure rules: key matching, the profile bounds, the keys setting and the
`hubbub api-key` command (PROTOCOL.md §8)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from hubbub.cli import main
from hubbub.domain import profile
from hubbub.domain.errors import BadRequest
from hubbub.transport.server_api.auth import key_matches

NEW, OLD = "n" * 40, "o" * 40


@pytest.mark.parametrize(("given", "matches"), [
    (NEW, True), (OLD, True), (NEW[:-1], False), (NEW + "n", False), ("", False),
    ("N" * 40, False), ("é" * 40, False),
])
def test_a_key_matches_one_of_the_configured_keys_exactly(given: str, matches: bool) -> None:
    assert key_matches(given, (NEW, OLD)) is matches


def test_no_configured_key_matches_nothing() -> None:
    assert key_matches("", ()) is False


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": [1, "x"]} if depth == 1 else {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_metadata_may_nest_to_the_limit_and_no_deeper() -> None:
    assert profile.metadata_text(nested(profile.MAX_METADATA_DEPTH)) is not None
    with pytest.raises(BadRequest, match=r"\$\.metadata"):
        profile.metadata_text(nested(profile.MAX_METADATA_DEPTH + 1))
    # Lists count as levels too: {"a": [[...]]}.
    value: Any = 1
    for _ in range(profile.MAX_METADATA_DEPTH):
        value = [value]
    with pytest.raises(BadRequest, match=r"\$\.metadata"):
        profile.metadata_text({"a": value})


def test_metadata_is_bounded_by_its_encoded_size() -> None:
    limit = profile.MAX_METADATA_BYTES
    fits = {"k": "x" * (limit - len('{"k":""}'))}
    assert profile.metadata_text(fits) is not None
    with pytest.raises(BadRequest, match=r"\$\.metadata"):
        profile.metadata_text({"k": "x" * limit})


def test_a_hostile_depth_is_refused_without_recursion() -> None:
    value: Any = {}
    for _ in range(100_000):
        value = {"a": value}
    with pytest.raises(BadRequest, match="deeper"):
        profile.metadata_text(value)


@pytest.mark.parametrize(("raw", "expected"), [
    ("  Ann \n Lee ", "Ann Lee"), (None, None), ("a" * 100, "a" * 100),
])
def test_names_are_normalised(raw: str | None, expected: str | None) -> None:
    assert profile.check_user_name(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", "\u200b", "a" * 101])
def test_blank_or_long_names_are_refused(raw: str) -> None:
    with pytest.raises(BadRequest, match=r"\$\.name"):
        profile.check_user_name(raw)


@pytest.mark.parametrize("url", ["ftp://a/b", "https://", "javascript:alert(1)",
                                 "https://a.example/" + "x" * 2048])
def test_avatar_urls_are_http_and_bounded(url: str) -> None:
    with pytest.raises(BadRequest, match=r"\$\.avatar_url"):
        profile.check_avatar_url(url)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("HUBBUB_") and not name.upper().startswith("HUBBUB_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HUBBUB_JWT_SECRET", "a-shared-secret-long-enough-for-hs256-0123456789")


@pytest.mark.usefixtures("clean_env")
def test_a_short_api_key_is_refused_without_showing_it(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBBUB_API_KEYS", f"{NEW},short-secret")
    assert main(["check-config"]) == 2
    out, err = capsys.readouterr()
    assert "HUBBUB_API_KEYS" in err
    assert "key 2 is shorter" in err
    assert "short-secret" not in err + out


@pytest.mark.usefixtures("clean_env")
def test_api_keys_are_masked_by_check_config(capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBBUB_API_KEYS", f"{NEW},{OLD}")
    assert main(["check-config"]) == 0
    out, _ = capsys.readouterr()
    assert NEW not in out
    assert OLD not in out
    assert [line.split()[1] for line in out.splitlines() if line.startswith("api_keys ")] == [
        "***"]
    monkeypatch.delenv("HUBBUB_API_KEYS")
    assert main(["check-config"]) == 0
    out, _ = capsys.readouterr()
    assert [line.split()[1] for line in out.splitlines() if line.startswith("api_keys ")] == [
        "unset"]


def test_hubbub_api_key_prints_a_new_strong_key(capsys: pytest.CaptureFixture[str]) -> None:
    keys = []
    for _ in range(2):
        assert main(["api-key"]) == 0
        keys.append(capsys.readouterr().out.strip())
    assert keys[0] != keys[1]
    assert all(len(key) >= 43 for key in keys)
    assert all(key.replace("-", "").replace("_", "").isalnum() for key in keys)
