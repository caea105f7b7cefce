"""docs/contract/asyncapi.json passes the reference AsyncAPI parser (npm @asyncapi/parser,
pinned in tools/asyncapi; `make install` runs its `npm ci`). A missing node or parser is a
failure: `make test` installs both, so a skip would only hide a broken install."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from hubbub.protocol.client import AnyClientMessage
from hubbub.protocol.server import AnyServerMessage

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "asyncapi"
DOCUMENT = ROOT / "docs" / "contract" / "asyncapi.json"


def _node() -> str:
    node = shutil.which("node")
    ready = node is not None and (TOOL / "node_modules" / "@asyncapi" / "parser").is_dir()
    if not ready:
        message = ("node and tools/asyncapi's packages are needed (Debian's npm; run "
                   "`npm ci` in tools/asyncapi, as `make install` does)")
        pytest.fail(message)
    assert node is not None
    return node


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_node(), str(TOOL / "validate.js"), str(path)], cwd=TOOL,
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_asyncapi_document_is_valid() -> None:
    result = _validate(DOCUMENT)
    assert result.returncode == 0, result.stdout + result.stderr
    messages = len(AnyClientMessage.__args__) + len(AnyServerMessage.__args__)
    assert f"valid: AsyncAPI 3.0.0, {messages} messages" in result.stdout


def test_the_parser_refuses_a_broken_document(tmp_path: Path) -> None:
    """The check can fail: a payload of a type JSON Schema has not, and a dangling ref."""
    document = json.loads(DOCUMENT.read_text())
    document["components"]["schemas"]["Ping"]["properties"]["type"] = {"type": "nothing"}
    document["operations"]["send"]["messages"].append({"$ref": "#/channels/ws/messages/Nope"})
    broken = tmp_path / "asyncapi.json"
    broken.write_text(json.dumps(document))
    result = _validate(broken)
    assert result.returncode == 1, result.stdout
    assert "components.schemas.Ping.properties.type" in result.stdout
