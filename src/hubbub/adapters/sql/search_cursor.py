"""The `cursor` of a search page (PROTOCOL.md §3): where the next page starts, opaque to
clients. It names its mode, so a cursor is only ever read by the search that made it;
anything else is refused as BAD_REQUEST naming the field."""

from __future__ import annotations

import base64
from typing import Any

import msgspec

from hubbub.domain.errors import BadRequest


def encode(kind: str, position: Any) -> str:
    """`kind` (a mode's letter) and `position`, as a short URL-safe string."""
    raw = base64.urlsafe_b64encode(msgspec.json.encode(position)).rstrip(b"=")
    return f"{kind}.{raw.decode()}"


def decode(kind: str, cursor: str, shape: Any) -> Any:
    """The position in `cursor`, made by `encode(kind, …)` with a value of `shape`.

    Raises:
        BadRequest: it was not.
    """
    prefix, _, raw = cursor.partition(".")
    try:
        if prefix != kind:
            raise ValueError(prefix)
        data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        return msgspec.json.decode(data, type=shape)
    except (ValueError, msgspec.DecodeError):
        raise BadRequest("not a cursor of this search (pass the `next_cursor` of the "
                         "previous page, with the same query and mode) - at `$.cursor`"
                         ) from None
