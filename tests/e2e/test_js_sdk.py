"""The JavaScript SDK (clients/js): its own tests under node's test runner, against real
hubbub processes they start, and the browser client's copy of it kept identical."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hubbub.transport.static import STATIC_DIR

SDK = Path(__file__).resolve().parents[2] / "clients" / "js"


def test_the_browser_client_serves_the_sdk_unchanged() -> None:
    """static/ holds copies of the SDK's modules (no build step can drift them): after
    editing the SDK, `cp clients/js/*.js src/hubbub/static/`."""
    modules = sorted(path.name for path in SDK.glob("*.js"))
    assert modules == ["changes.js", "hubbub.js", "outbox.js"]
    for name in modules:
        assert (STATIC_DIR / name).read_bytes() == (SDK / name).read_bytes(), name


@pytest.mark.timeout(300)
def test_the_sdk_passes_its_tests_against_a_real_server() -> None:
    """`node --test` over clients/js/test: send and receive, reconnect after a restart with
    sync, RATE_LIMITED and lost answers retried with the same client_message_id."""
    node = shutil.which("node")
    assert node, "node is needed (Debian's nodejs; .ci/run installs npm, which brings it)"
    assert (SDK / "node_modules" / "ws").is_dir(), \
        "run `npm ci` in clients/js (`make install` does)"
    tests = sorted(str(path) for path in (SDK / "test").glob("*.test.js"))
    assert tests, "no SDK tests found"
    # The servers the tests start are this interpreter's hubbub.
    env = {**os.environ, "HUBBUB_BIN": str(Path(sys.executable).parent / "hubbub")}
    result = subprocess.run([node, "--test", *tests], cwd=SDK, env=env, capture_output=True,
                            text=True, timeout=280, check=False)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
