"""The error codes of PROTOCOL.md §4 and §7, the one place they are spelled: the server's
errors (domain/errors.py) carry them and a client (hubbub.client) compares against them."""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    """The stable error codes of PROTOCOL.md §4 and §7 (a str: it goes on the wire as is)."""

    BAD_REQUEST = "BAD_REQUEST"
    UNAUTHORIZED = "UNAUTHORIZED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    REJECTED = "REJECTED"
    RATE_LIMITED = "RATE_LIMITED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    UNAVAILABLE = "UNAVAILABLE"
