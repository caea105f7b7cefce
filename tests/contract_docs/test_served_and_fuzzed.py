"""A real `hubbub serve` on SQLite serves the documents, and schemathesis fuzzes its user
and server APIs from docs/contract/openapi.json: no 500, every response as documented.

Bounded: MAX_EXAMPLES cases per operation and phase (15-40 s per door here, by load). A failure
prints schemathesis' report with its seed; `--seed N` replays it."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
import uuid
from pathlib import Path

import pytest

from hubbub.contract.routes import ROUTES
from hubbub.domain.tokens import mint
from tests.contract_docs.conftest import API_KEY, COMMITTED
from tests.support.process import ServerProcess

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
MAX_EXAMPLES = 30
RUN_TIMEOUT_S = 240.0


@pytest.mark.parametrize("name", ["openapi.json", "asyncapi.json"])
async def test_the_server_serves_the_committed_documents(process: ServerProcess,
                                                         name: str) -> None:
    async with process.http() as http:  # no credentials: the documents hold no data
        response = await http.get(f"/{name}")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.content == (COMMITTED / name).read_bytes()


def _credentials(process: ServerProcess, door: str) -> str:
    if door == "server":
        return API_KEY
    return mint(process.jwt_secret, str(uuid.uuid4()), "fuzz", now=time.time(), ttl_s=3600)


async def _schemathesis(process: ServerProcess, door: str, document: Path,
                        *only: str) -> tuple[int, str]:
    child = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS), "run", str(document), "--url", process.base_url,
        "--include-tag", door, *only, "-H", f"Authorization: Bearer {_credentials(process, door)}",
        "--checks", "not_a_server_error,response_schema_conformance",
        "--max-examples", str(MAX_EXAMPLES), "--workers", "1", "--no-color",
        cwd=process.workdir,  # its cache of failures (.schemathesis/) goes there
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(child.communicate(), RUN_TIMEOUT_S)
    except TimeoutError:
        child.kill()
        await child.wait()
        raise
    assert child.returncode is not None
    return child.returncode, out.decode(errors="replace")


@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
@pytest.mark.parametrize("door", ["user", "server"])
async def test_fuzzing_finds_no_500_and_no_undocumented_response(
        process: ServerProcess, door: str) -> None:
    code, report = await _schemathesis(process, door, COMMITTED / "openapi.json")
    assert code == 0, report + "\n" + process.log_tail()
    counts = re.search(r"(\d+) generated, (\d+) passed", report)
    assert counts is not None, report
    assert int(counts[1]) == int(counts[2]) > 0, report
    operations = sum(1 for r in ROUTES if r.door == door)
    assert f"Tested: {operations}\n" in report, report  # every operation of the door ran


@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
async def test_fuzzing_fails_on_a_response_the_document_does_not_describe(
        process: ServerProcess, tmp_path: Path) -> None:
    """The check can fail: a document that promises a field `/users/me` never sends."""
    document = json.loads((COMMITTED / "openapi.json").read_text())
    me = document["components"]["schemas"]["Me"]
    me["properties"]["nickname"] = {"type": "string"}
    me["required"].append("nickname")
    wrong = tmp_path / "openapi.json"
    wrong.write_text(json.dumps(document))
    code, report = await _schemathesis(process, "user", wrong,
                                       "--include-path", "/api/v1/users/me",
                                       "--phases", "fuzzing", "--max-failures", "1")
    assert code == 1, report
    assert "Response violates schema" in report
    assert "nickname" in report
