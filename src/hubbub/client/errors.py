"""The SDK's one exception tree.

    HubbubError
    ├── RequestError        the server answered a request with `Error` (PROTOCOL.md §4)
    ├── AuthenticationError the handshake was refused (401/403, PROTOCOL.md §1): not retried
    ├── Unreachable         no connection (network, timeout): `Socket.open` raises it,
    │   │                   `Client` tries again after its backoff
    │   └── HandshakeFailed the upgrade got another HTTP status (429, 5xx): its `status`
    │                       and `Retry-After`, which `Client` waits out
    └── ClientClosed        the client was closed before the request was answered
"""

from __future__ import annotations

from hubbub.protocol.server import Error


class HubbubError(Exception):
    """Base of every error the SDK raises."""


class RequestError(HubbubError):
    """The server refused a request; `code` is the wire code (`FORBIDDEN`, `NOT_FOUND`…)."""

    def __init__(self, code: str, message: str, retry_after_ms: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retry_after_ms = retry_after_ms

    @classmethod
    def of(cls, error: Error) -> RequestError:
        retry = error.retry_after_ms if isinstance(error.retry_after_ms, int) else None
        return cls(error.code, error.message, retry)


class AuthenticationError(HubbubError):
    """The server refused the token (or ticket) at the handshake, with this HTTP status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"the server refused the handshake with HTTP {status}")
        self.status = status


class Unreachable(HubbubError):
    """The handshake failed for a reason a later attempt may not meet (network, 5xx)."""


class HandshakeFailed(Unreachable):
    """The server (or a proxy) answered the upgrade with an HTTP status other than 101,
    401 and 403: `429` over the handshake rate (§6), a `5xx`. `retry_after_s` is its
    `Retry-After` in seconds, None when absent or not a number of seconds."""

    def __init__(self, status: int, retry_after_s: float | None) -> None:
        super().__init__(f"handshake answered {status}")
        self.status = status
        self.retry_after_s = retry_after_s


class ClientClosed(HubbubError):
    """The client was closed (or stopped on an authentication error) first."""
