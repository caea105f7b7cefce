"""The committed documents match the types, and the OpenAPI paths match the app's router."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web

from hubbub.app import create_app
from hubbub.config import Settings
from hubbub.contract.__main__ import main
from hubbub.contract.documents import BUILDERS, documents
from hubbub.contract.jsonschema import message_schema, short_name
from hubbub.contract.routes import NOT_DOCUMENTED, ROUTES
from hubbub.protocol import client, server

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "contract"


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_the_committed_document_is_what_the_types_give(name: str) -> None:
    committed = (COMMITTED / name).read_bytes()
    assert committed == documents()[name], (
        f"docs/contract/{name} is stale: run `python -m hubbub.contract`")


def test_check_names_a_stale_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    assert main([str(tmp_path)]) == 0
    assert main(["--check", str(tmp_path)]) == 0
    (tmp_path / "openapi.json").write_text("{}\n")
    assert main(["--check", str(tmp_path)]) == 1
    assert "openapi.json is stale" in capsys.readouterr().err
    assert (tmp_path / "openapi.json").read_text() == "{}\n"  # --check writes nothing


def _tags(union: Any) -> set[str]:
    return {kind.__struct_config__.tag for kind in union.__args__}


def _counted(heading: str) -> int:
    """N of PROTOCOL.md's `## <heading> (N types)`."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md").read_text()
    found = re.search(rf"^## {re.escape(heading)} \((\d+) types\)$", text, re.MULTILINE)
    assert found is not None, heading
    return int(found.group(1))


def test_the_schema_lists_every_message_of_both_directions() -> None:
    schema = message_schema()
    defs = schema["$defs"]

    def listed(union: str) -> set[str]:
        names = [ref["$ref"].rsplit("/", 1)[1] for ref in defs[union]["anyOf"]]
        return {defs[name]["properties"]["type"]["enum"][0] for name in names}

    assert listed("ClientMessage") == _tags(client.AnyClientMessage)
    assert listed("ServerMessage") == _tags(server.AnyServerMessage)
    # PROTOCOL.md's section headings count the types of each direction.
    assert len(_tags(client.AnyClientMessage)) == _counted("3. Client → server")
    assert len(_tags(server.AnyServerMessage)) == _counted("4. Server → client")
    assert set(defs["ClientMessage"]["discriminator"]["mapping"]) == listed("ClientMessage")


def test_refs_all_resolve_and_patterns_are_ecma() -> None:
    for name, build in BUILDERS.items():
        text = json.dumps(build())
        assert "\\\\Z" not in text, name
        assert "hubbub.protocol." not in text, name
        assert "hubbub.transport." not in text, name
        document = json.loads(text)
        for ref in re.findall(r'"\$ref": "#/([^"]+)"', text):
            node = document
            for part in ref.split("/"):
                assert part in node, f"{name}: #{ref} does not resolve"
                node = node[part]


def test_short_names_keep_unknown_modules_dotted() -> None:
    assert short_name("hubbub.protocol.client.CallOffer") == "ClientCallOffer"
    assert short_name("hubbub.protocol.server.CallOffer") == "ServerCallOffer"
    assert short_name("elsewhere.Thing") == "elsewhere.Thing"


def _app_routes(app: web.Application) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue  # aiohttp adds one beside each GET
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or re.sub(r"{(\w+)(:[^}]*)?}", r"{\1}", info["formatter"])
        found.add((route.method, path))
    return found


def test_openapi_has_every_route_of_the_app_and_no_other() -> None:
    app = create_app(Settings(jwt_secret="x" * 32, api_keys=("k" * 32,)))
    served = _app_routes(app) - NOT_DOCUMENTED
    documented = {(r.method, r.path) for r in ROUTES}
    assert served - documented == set(), "routes missing from contract/routes.py"
    assert documented - served == set(), "contract/routes.py lists routes the app lacks"
    assert _app_routes(app) >= NOT_DOCUMENTED, "NOT_DOCUMENTED names a route gone from the app"


def test_the_openapi_paths_are_the_route_table() -> None:
    paths = json.loads(documents()["openapi.json"])["paths"]
    listed = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    assert listed == {(r.method, r.path) for r in ROUTES}
    for path, ops in paths.items():
        for method, operation in ops.items():
            assert "default" in operation["responses"], (method, path)
            if path.startswith("/api/v1/server/"):
                assert operation["security"] == [{"apiKey": []}]
            elif path.startswith("/api/v1/"):
                assert operation["security"] == [{"userJwt": []}]


def test_the_schema_describes_what_the_codec_accepts() -> None:
    """A frame the decoder takes has the tag and required fields the schema says."""
    defs = message_schema()["$defs"]
    frame = client.SendMessage(conversation_id="0" * 8 + "-0000-0000-0000-" + "0" * 12,
                               content="hi")
    encoded = msgspec.to_builtins(frame)
    required = set(defs["SendMessage"]["required"])
    assert required <= set(encoded)
    assert encoded["type"] == "SendMessage"
    assert defs["SendMessage"]["properties"]["content"]["maxLength"] == 4000
