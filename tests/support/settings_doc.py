"""README's table of settings, made from the `Settings` fields, so the two cannot drift.

`.venv/bin/python -m tests.support.settings_doc` rewrites the table in README.md;
tests/unit/test_settings_doc.py fails while they differ.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hubbub.config import Settings, hidden, unit
from hubbub.settings_sources import FILE_SUFFIX, display, env_name

README = Path(__file__).resolve().parents[2] / "README.md"
START = "<!-- settings: generated from src/hubbub/config.py by tests/support/settings_doc.py -->"
END = "<!-- end of settings -->"


def table() -> str:
    """One row per setting: variable (and its `_FILE` twin), default, meaning."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        variable = f"`{env_name(name)}`"
        if hidden(name):
            variable += f" (or `{env_name(name + FILE_SUFFIX)}`)"
        default = display(field.default)
        if default != "unset":
            measure = unit(name)
            default = f"`{default}`" + (measure.suffix if measure else "")
        rows.append(f"| {variable} | {default} | {field.description} |")
    return "\n".join(rows)


def block() -> str:
    return f"{START}\n{table()}\n{END}"


def current(readme: str) -> str:
    """The generated block as README holds it now ('' when missing)."""
    start, end = readme.find(START), readme.find(END)
    return readme[start:end + len(END)] if 0 <= start < end else ""


def main() -> int:
    text = README.read_text()
    old = current(text)
    if not old:
        print(f"README.md has no {START!r} … {END!r} block", file=sys.stderr)
        return 1
    README.write_text(text.replace(old, block()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
