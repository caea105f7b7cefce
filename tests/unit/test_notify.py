"""sd_notify(3) over a real datagram socket: a path or the abstract namespace, and
nothing at all outside systemd."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

from hubbub.notify import notify


def test_nothing_is_sent_outside_systemd() -> None:
    """Without NOTIFY_SOCKET there is nobody to tell."""
    assert notify("READY=1", env={}) is False


def test_a_state_reaches_a_socket_by_path(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(tmp_path / "notify"))
        assert notify("READY=1", env={"NOTIFY_SOCKET": str(tmp_path / "notify")}) is True
        assert listener.recv(64) == b"READY=1"


def test_a_state_reaches_an_abstract_socket() -> None:
    """systemd names abstract sockets with a leading `@`."""
    name = f"hubbub-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind("\0" + name)
        assert notify("STOPPING=1", env={"NOTIFY_SOCKET": "@" + name}) is True
        assert listener.recv(64) == b"STOPPING=1"


def test_a_socket_that_is_gone_is_not_an_error(tmp_path: Path) -> None:
    """The server serves whether or not systemd hears it."""
    assert notify("READY=1", env={"NOTIFY_SOCKET": str(tmp_path / "gone")}) is False
