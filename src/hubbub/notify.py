"""systemd's readiness protocol (sd_notify(3)) in the few lines it takes: one datagram
to the socket named by `$NOTIFY_SOCKET`. Outside a `Type=notify` unit the variable is
unset and nothing happens.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from hubbub.logs import get_logger

log = get_logger("hubbub.notify")


def notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    """Send `state` (`READY=1`, `STOPPING=1`) to systemd; True when it was sent.

    A failure is logged, never raised: the server serves whether or not systemd hears it.
    """
    path = (os.environ if env is None else env).get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):  # a socket in the abstract namespace
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(path)
            sock.sendall(state.encode())
    except OSError as exc:
        log.warning("notify.failed", state=state, error=type(exc).__name__)
        return False
    return True

