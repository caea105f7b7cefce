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

`Code` (protocol/codes.py, so that a client library has them too) lists every code a
client can see, these and `UNAVAILABLE` (HTTP 503: the server
is shutting down and refuses a new WebSocket); docs/PROTOCOL.md §4 documents each one
(tests/unit/test_error_codes.py keeps that table complete). Services raise these; the
transport turns them into `Error` frames or JSON error bodies. Anything else that escapes
is reported as INTERNAL_ERROR (HTTP 500) without details and logged with its traceback.
"""

from __future__ import annotations

from typing import ClassVar

from hubbub.protocol.codes import Code as Code  # the codes' home is the protocol's


class ChatError(Exception):
    """An error the client is told about, with a stable code."""

    code: ClassVar[Code] = Code.INTERNAL_ERROR
    http_status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ChatError):
    code = Code.BAD_REQUEST
    http_status = 400


class Unauthorized(ChatError):
    code = Code.UNAUTHORIZED
    http_status = 401


class Forbidden(ChatError):
    code = Code.FORBIDDEN
    http_status = 403


class NotFound(ChatError):
    code = Code.NOT_FOUND
    http_status = 404


class Conflict(ChatError):
    code = Code.CONFLICT
    http_status = 409


class PayloadTooLarge(ChatError):
    code = Code.PAYLOAD_TOO_LARGE
    http_status = 413


class Rejected(ChatError):
    """The deployment's moderation hook refused the message (nothing was stored)."""

    code = Code.REJECTED
    http_status = 422


class RateLimited(ChatError):
    code = Code.RATE_LIMITED
    http_status = 429

    def __init__(self, message: str, retry_after_ms: int) -> None:
        super().__init__(message)
        self.retry_after_ms = retry_after_ms


def unknown_conversation() -> NotFound:
    """The one NOT_FOUND for a conversation id that names nothing (§3: `conversation_id`)."""
    return NotFound("unknown conversation - at `$.conversation_id`")
