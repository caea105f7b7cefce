"""HUBBUB_BASE_PATH is checked at start: a bad prefix is refused with the variable's name
and what it takes, before anything listens."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hubbub.config import Settings
from tests.unit.test_settings import refused

PATH_ERROR = ("expected a path that starts with / and does not end with / (`/chat`), or "
              "empty for the root")
CHARACTER_ERROR = "expected a path without spaces, `//`, `?`, `#`, `%`, `{` or `}`"


@pytest.mark.parametrize(("value", "error"), [
    ("chat", PATH_ERROR), ("/chat/", PATH_ERROR), ("/", PATH_ERROR),
    ("/my chat", CHARACTER_ERROR), ("/a//b", CHARACTER_ERROR), ("/chat?x", CHARACTER_ERROR),
    ("/{id}", CHARACTER_ERROR), ("/a%20b", CHARACTER_ERROR),
])
def test_a_bad_base_path_is_refused_naming_the_variable(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        value: str, error: str) -> None:
    monkeypatch.setenv("HUBBUB_JWT_SECRET", "x" * 32)
    monkeypatch.setenv("HUBBUB_BASE_PATH", value)
    assert refused(capsys) == f"hubbub: invalid HUBBUB_BASE_PATH={value}: {error}"


@pytest.mark.parametrize("value", ["", "/chat", "/apps/chat-1", "/a.b_c~d"])
def test_a_good_base_path_is_kept(value: str) -> None:
    assert Settings(base_path=value).base_path == value


@pytest.mark.parametrize("value", ["chat/", "/tab\there", "/new\nline"])
def test_the_model_names_the_field(value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(base_path=value)
    assert caught.value.errors()[0]["loc"] == ("base_path",)
