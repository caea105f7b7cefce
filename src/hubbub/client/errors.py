"""The SDK's one exception tree.

    HubbubError
    ├── RequestError        the server answered a request with `Error` (PROTOCOL.md §4)
    ├── AuthenticationError the handshake was refused (401/403, PROTOCOL.md §1): not retried
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


class ClientClosed(HubbubError):
    """The client was closed (or stopped on an authentication error) first."""
