"""Every error code a client can see is a `Code` and has its row in PROTOCOL.md §4."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from hubbub.domain import errors
from hubbub.domain.errors import ChatError, Code
from hubbub.storage.errors import StoreUnavailable

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = ROOT / "docs" / "PROTOCOL.md"
SRC = ROOT / "src" / "hubbub"


def documented_codes() -> dict[str, int]:
    """`{code: HTTP status}` from the rows of §4's error table."""
    rows = re.findall(r"^\| `([A-Z_]+)` \| (\d{3}) \|", PROTOCOL.read_text(), re.MULTILINE)
    return {code: int(status) for code, status in rows}


def test_every_code_is_documented() -> None:
    """The table names each code of the enum, and nothing else."""
    assert set(documented_codes()) == {code.value for code in Code}


def test_each_error_class_has_its_documented_status() -> None:
    """A ChatError's HTTP status is the one its code's row gives."""
    table = documented_codes()
    classes = [value for value in vars(errors).values()
               if isinstance(value, type) and issubclass(value, ChatError)
               and value is not ChatError]
    assert len(classes) >= 7
    for cls in classes:
        assert isinstance(cls.code, Code)
        assert table[cls.code] == cls.http_status, cls
    assert StoreUnavailable.code is Code.INTERNAL_ERROR


def test_no_code_is_written_as_a_raw_string() -> None:
    """Outside the enum, no module spells a code as a string literal."""
    codes = {code.value for code in Code}
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path == SRC / "protocol" / "codes.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in codes:
                found.append(f"{path.relative_to(SRC)}:{node.lineno} {node.value}")
    assert found == []
