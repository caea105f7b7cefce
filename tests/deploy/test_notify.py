"""`hubbub serve` under systemd's Type=notify (deploy/systemd/hubbub@.service): READY=1
once its port listens, STOPPING=1 when SIGTERM starts the drain, over a real datagram
socket as systemd would listen on."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.process import ServerProcess, free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")

WAIT_S = 60.0  # a cold interpreter on a loaded machine (process.py START_TIMEOUT_S)


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, Path]]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    try:
        yield sock, path
    finally:
        sock.close()


async def test_serve_tells_systemd_when_it_listens_and_when_it_stops(
        tmp_path: Path, notify_socket: tuple[socket.socket, Path]) -> None:
    """READY=1 comes when the port already accepts connections; STOPPING=1 on SIGTERM."""
    sock, path = notify_socket
    loop = asyncio.get_running_loop()
    port = free_port()
    instance = ServerProcess(f"sqlite:///{tmp_path / 'hubbub.db'}", tmp_path,
                             extra_env={"NOTIFY_SOCKET": str(path)})

    async def ready_then_connect() -> bytes:
        message = await asyncio.wait_for(loop.sock_recv(sock, 4096), WAIT_S)
        _, writer = await asyncio.open_connection("127.0.0.1", port)  # refused if early
        writer.close()
        await writer.wait_closed()
        return message

    heard = asyncio.create_task(ready_then_connect())
    try:
        await instance.start(port=port)
        assert await heard == b"READY=1"
        stopping = asyncio.create_task(asyncio.wait_for(loop.sock_recv(sock, 4096), WAIT_S))
        await instance.stop()
        assert await stopping == b"STOPPING=1"
    finally:
        heard.cancel()
        await instance.stop()
