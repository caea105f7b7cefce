"""What the backend may set on a user through the server API (PROTOCOL.md §8): a display
name, an avatar URL and a free JSON object, bounded so that a profile stays small enough
to hand out with every member list."""

from __future__ import annotations

from typing import Any

import msgspec

from hubbub.domain.errors import BadRequest
from hubbub.domain.names import MAX_NAME_CHARS, normalise_name
from hubbub.domain.validation import check_url

MAX_METADATA_BYTES = 8192  # the object encoded as compact JSON
MAX_METADATA_DEPTH = 8  # nested objects and arrays, the top object being 1
MAX_AVATAR_URL_CHARS = 2048


def check_user_name(raw: str | None) -> str | None:
    """A display name set by the backend: normalised like a token's `name` (names.py),
    1–100 characters after that; None keeps the stored one."""
    if raw is None:
        return None
    name = normalise_name(raw)
    if not name:
        raise BadRequest("name must not be blank - at `$.name`")
    if len(name) > MAX_NAME_CHARS:
        raise BadRequest(f"name longer than {MAX_NAME_CHARS} characters - at `$.name`")
    return name


def check_avatar_url(url: str | None) -> str | None:
    if url is None:
        return None
    if len(url) > MAX_AVATAR_URL_CHARS:
        raise BadRequest(f"avatar_url longer than {MAX_AVATAR_URL_CHARS} characters - at "
                         "`$.avatar_url`")
    check_url(url, "$.avatar_url")
    return url


def metadata_text(value: dict[str, Any] | None) -> str | None:
    """The metadata object as the JSON text stored, or BadRequest naming `$.metadata` when
    it is too large or too deep."""
    if value is None:
        return None
    depth = _depth(value)
    if depth > MAX_METADATA_DEPTH:
        raise BadRequest(f"metadata nested deeper than {MAX_METADATA_DEPTH} levels - at "
                         "`$.metadata`")
    text = msgspec.json.encode(value)
    if len(text) > MAX_METADATA_BYTES:
        raise BadRequest(f"metadata larger than {MAX_METADATA_BYTES} bytes as JSON - at "
                         "`$.metadata`")
    return text.decode()


def _depth(value: Any) -> int:
    """Nesting depth, iteratively (a hostile body must not exhaust the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: list[Any] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if level > MAX_METADATA_DEPTH:
            return level
        stack.extend((child, level + 1) for child in children)
    return deepest
