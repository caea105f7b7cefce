"""`hubbub serve` as an operator starts it: a missing key or a bad value stops it with one
line, it says where it listens only once it does, and a busy port is one line too."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import sys
from pathlib import Path

import pytest

from tests.support.process import free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")

# A cold interpreter imports hubbub and migrates in a second; the margin is for a loaded
# two-core machine.
EXIT_TIMEOUT_S = 60.0


def operator_env(**variables: str) -> dict[str, str]:
    """The environment without the test run's `HUBBUB_*`, plus `variables`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBBUB_")}
    return env | variables


async def serve(workdir: Path, env: dict[str, str], *flags: str) -> tuple[int, str, str]:
    """Run `hubbub serve` to its exit: status, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hubbub", "serve", *flags, cwd=workdir, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), EXIT_TIMEOUT_S)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_without_a_key_the_server_does_not_start(tmp_path: Path) -> None:
    """Each instance would otherwise sign with a secret of its own, refusing the others'."""
    status, out, err = await serve(tmp_path, operator_env(HUBBUB_PORT=str(free_port())))
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("hubbub: no JWT key: set HUBBUB_JWT_SECRET"), err
    assert os.listdir(tmp_path) == []  # no secret generated, no database made


@pytest.mark.parametrize(("variable", "value", "accepted"), [
    ("HUBBUB_PORT", "abc", "an integer from 1 to 65535"),
    ("HUBBUB_PORT", "99999", "an integer from 1 to 65535"),
    ("HUBBUB_AUTO_MIGRATE", "disabled", "one of on, off, true, false, 1, 0, yes, no"),
])
async def test_a_bad_value_stops_serve_with_one_line(tmp_path: Path, variable: str,
                                                     value: str, accepted: str) -> None:
    env = operator_env(HUBBUB_JWT_SECRET=secrets.token_urlsafe(32), **{variable: value})
    status, out, err = await serve(tmp_path, env)
    assert (status, out) == (2, "")
    assert err == f"hubbub: invalid {variable}={value}: expected {accepted}\n"


async def read_until(stream: asyncio.StreamReader, needle: str) -> str:
    while True:
        line = (await asyncio.wait_for(stream.readline(), EXIT_TIMEOUT_S)).decode()
        assert line, f"the server ended before logging {needle}"
        if needle in line:
            return line


async def test_listening_is_logged_once_the_port_is_bound(tmp_path: Path) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hubbub", "serve", "--dev", "--port", str(port), cwd=tmp_path,
        env=operator_env(), stderr=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    try:
        line = json.loads(await read_until(process.stderr, "server.listening"))
        # Straight after the line, with no retry: the port must already be open.
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        assert line["url"] == f"http://127.0.0.1:{port}"
        assert (line["database"], line["bus"]) == ("sqlite", "memory")
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), EXIT_TIMEOUT_S)
    assert process.returncode == 0


async def test_a_busy_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = operator_env(HUBBUB_JWT_SECRET=secrets.token_urlsafe(32),
                           HUBBUB_LOG_LEVEL="error", HUBBUB_PORT=str(port))
        status, out, err = await serve(tmp_path, env)
    assert (status, out) == (1, "")
    assert err == f"hubbub: cannot listen on 127.0.0.1:{port}: address already in use\n"
