"""One error tree carrying the wire codes of PROTOCOL.md §4 and the HTTP status of §7.

    ChatError (code, http_status)
    ├── BadRequest          BAD_REQUEST        400
    ├── Unauthorized        UNAUTHORIZED       401
    ├── Forbidden           FORBIDDEN          403
    ├── NotFound            NOT_FOUND          404
    ├── Conflict            CONFLICT           409
    ├── PayloadTooLarge     PAYLOAD_TOO_LARGE  413
    ├── Rejected            REJECTED           422 (the moderation hook said no)
    └── RateLimited         RATE_LIMITED       429 (+ retry_after_ms)

Services raise these; the transport turns them into `Error` frames or JSON error bodies.
Anything else that escapes is reported as INTERNAL_ERROR (HTTP 500) without details and
logged with its traceback.
"""

from __future__ import annotations

from typing import ClassVar


class ChatError(Exception):
    """An error the client is told about, with a stable code."""

    code: ClassVar[str] = "INTERNAL_ERROR"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ChatError):
    code = "BAD_REQUEST"
    http_status = 400


class Unauthorized(ChatError):
    code = "UNAUTHORIZED"
    http_status = 401


class Forbidden(ChatError):
    code = "FORBIDDEN"
    http_status = 403


class NotFound(ChatError):
    code = "NOT_FOUND"
    http_status = 404


class Conflict(ChatError):
    code = "CONFLICT"
    http_status = 409


class PayloadTooLarge(ChatError):
    code = "PAYLOAD_TOO_LARGE"
    http_status = 413


class Rejected(ChatError):
    code = "REJECTED"
    http_status = 422


class RateLimited(ChatError):
    code = "RATE_LIMITED"
    http_status = 429

    def __init__(self, message: str, retry_after_ms: int) -> None:
        super().__init__(message)
        self.retry_after_ms = retry_after_ms
