"""README documents every setting, as the fields define them."""

from __future__ import annotations

from hubbub.config import Settings
from tests.support.settings_doc import README, block, current


def test_readme_lists_every_setting_as_defined() -> None:
    assert current(README.read_text()) == block(), (
        "README's settings table is out of date: run "
        "`.venv/bin/python -m tests.support.settings_doc`")


def test_every_setting_is_described() -> None:
    undescribed = [name for name, field in Settings.model_fields.items()
                   if not field.description]
    assert not undescribed
