"""The SDK and the server API client import nothing of the server: an application or a
backend installs hubbub for them without running its server parts."""

from __future__ import annotations

import ast
from pathlib import Path

import hubbub

SRC = Path(hubbub.__file__).parent
ALLOWED = ("hubbub.client", "hubbub.protocol")


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module)
    return names


def test_the_sdk_imports_only_the_protocol() -> None:
    """hubbub.client and hubbub.server_api: of hubbub, the protocol's types only."""
    files = [*sorted((SRC / "client").glob("*.py")), SRC / "server_api.py"]
    assert len(files) > 5
    for path in files:
        ours = {name for name in imports_of(path) if name.split(".")[0] == "hubbub"}
        foreign = {name for name in ours if not name.startswith(ALLOWED)}
        assert not foreign, f"{path.name} imports {foreign}"
        assert "aiohttp.web" not in imports_of(path)
