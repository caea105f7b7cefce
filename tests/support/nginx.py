"""nginx (Debian's package) in front of hubbub instances, with the shipped site file
(deploy/nginx/hubbub.conf) rendered for free ports and a test certificate.

Outside CI a missing `nginx` binary skips the test loudly; with CI=true it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import ssl
import subprocess
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.process import free_port
from tests.support.server import User
from tests.support.services import unavailable
from tests.support.tls import Certificate

SITE = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "hubbub.conf"
_PLACEHOLDER = re.compile(r"@[A-Z0-9_]+@")

# The main file the site is included from: one worker (so its round robin is the only one
# and the spread across instances is predictable), every path inside the test's folder.
MAIN = """\
daemon off;
worker_processes 1;
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/hubbub.conf;
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if found is None:
        unavailable("nginx", FileNotFoundError("nginx is not on PATH (Debian: nginx-light)"))
    assert found is not None
    return found


def render_site(values: dict[str, str]) -> str:
    """The shipped site file with every `@NAME@` outside comments replaced (each must be
    given, and each given must be there)."""
    lines = SITE.read_text().splitlines(keepends=True)
    for name in values:
        assert any(f"@{name}@" in line for line in lines if not _comment(line)), \
            f"deploy/nginx/hubbub.conf has no @{name}@"
    rendered = []
    for line in lines:
        if not _comment(line):
            for name, value in values.items():
                line = line.replace(f"@{name}@", value)
            left = _PLACEHOLDER.findall(line)
            assert not left, f"placeholders not rendered: {left}"
        rendered.append(line)
    return "".join(rendered)


def _comment(line: str) -> bool:
    return line.lstrip().startswith("#")


@dataclass
class Proxy:
    """A running nginx: where it listens and how to reach it as a client would."""

    https_port: int
    http_port: int
    tls: ssl.SSLContext
    directory: Path
    base_path: str = ""

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}{self.base_path}"

    @property
    def ws_url(self) -> str:
        return f"wss://127.0.0.1:{self.https_port}{self.base_path}/ws"

    def http(self, user: User | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {user.token}"} if user else {}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, verify=self.tls,
                                 timeout=15)

    def error_log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.directory / "error.log").read_text(errors="replace")[-4000:]
        return "(no error log)"


def write_config(directory: Path, upstreams: Sequence[int], certificate: Certificate,
                 https_port: int, http_port: int, base_path: str = "") -> Path:
    """The rendered site and its main file in `directory`; returns the main file."""
    directory.mkdir(parents=True, exist_ok=True)
    values = {
        "SERVER_NAME": "127.0.0.1 localhost",
        "HTTPS_LISTEN": f"127.0.0.1:{https_port}",
        "HTTP_LISTEN": f"127.0.0.1:{http_port}",
        "TLS_CERTIFICATE": str(certificate.certificate),
        "TLS_CERTIFICATE_KEY": str(certificate.key),
        "BASE_PATH": base_path,
    }
    values.update({f"INSTANCE_{n}": f"127.0.0.1:{port}"
                   for n, port in enumerate(upstreams, start=1)})
    (directory / "hubbub.conf").write_text(render_site(values))
    # As root, workers would run as `nobody` and could not enter the test's private folder.
    user = "user root;" if os.geteuid() == 0 else ""
    main = directory / "nginx.conf"
    main.write_text(MAIN.format(dir=directory, user=user))
    return main


@contextlib.asynccontextmanager
async def run_nginx(directory: Path, upstreams: Sequence[int], certificate: Certificate,
                    base_path: str = "") -> AsyncIterator[Proxy]:
    """nginx on two free ports (HTTPS and the plain-HTTP redirect) in front of the
    instances listening on `upstreams` (three, as the site file ships), passing hubbub
    `base_path` (HUBBUB_BASE_PATH) only; stopped after."""
    binary = nginx_binary()
    https_port, http_port = free_port(), free_port()
    main = write_config(directory, upstreams, certificate, https_port, http_port, base_path)
    command = [binary, "-p", str(directory), "-c", str(main), "-e", str(directory / "error.log")]
    check = await asyncio.create_subprocess_exec(*command, "-t", stdout=subprocess.DEVNULL,
                                                 stderr=subprocess.PIPE)
    _, errors = await check.communicate()
    assert check.returncode == 0, f"nginx -t refused the rendered config:\n{errors.decode()}"
    process = await asyncio.create_subprocess_exec(
        *command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proxy = Proxy(https_port, http_port, certificate.client_context(), directory, base_path)
    try:
        await _wait_listening(https_port, process, proxy)
        yield proxy
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)  # fast shutdown: connections are cut
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _wait_listening(port: int, process: asyncio.subprocess.Process,
                          proxy: Proxy) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while True:
        if process.returncode is not None:
            raise AssertionError(f"nginx exited with {process.returncode}:\n"
                                 f"{proxy.error_log()}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if loop.time() > deadline:
                raise AssertionError(f"nginx not listening:\n{proxy.error_log()}") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
