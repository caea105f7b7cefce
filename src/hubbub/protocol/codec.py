"""Decoding client frames and encoding server messages (PROTOCOL.md §2).

One `Decoder` for the whole client union, built once: msgspec validates types, lengths and
ranges in the same C pass that parses the JSON, and names the offending field.
"""

from __future__ import annotations

from typing import Any

import msgspec

from hubbub.protocol.client import AnyClientMessage
from hubbub.protocol.server import ServerMessage

_decoder = msgspec.json.Decoder(AnyClientMessage)
_any_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()

# §5 of PROTOCOL.md bounds nothing about depth; a deep JSON nest is the cheapest way to make
# a parser work hard, so frames nested deeper than this are refused before decoding.
MAX_JSON_DEPTH = 32


class DecodeError(Exception):
    """A frame that is not a valid client message; `request_id` is echoed when readable."""

    def __init__(self, message: str, request_id: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id


def decode_client_message(data: bytes | str) -> AnyClientMessage:
    """Decode one text frame into its typed client message.

    Raises:
        DecodeError: invalid JSON, not an object, unknown `type`, a wrong field type or a value
            out of range. The message names the field, e.g. "... - at `$.content`".
    """
    if _too_deep(data):
        raise DecodeError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels", _request_id(data))
    try:
        message: AnyClientMessage = _decoder.decode(data)
        return message
    except msgspec.ValidationError as exc:
        raise DecodeError(_describe(str(exc)), _request_id(data)) from None
    except msgspec.DecodeError as exc:
        raise DecodeError(f"invalid JSON: {exc}", None) from None


def encode(message: ServerMessage) -> bytes:
    """Encode a server message to its JSON text."""
    return _encoder.encode(message)


def encode_json(value: Any) -> bytes:
    """Encode any JSON-able value (REST bodies) with the same fast encoder."""
    return _encoder.encode(value)


def _describe(error: str) -> str:
    if error.startswith("Invalid value") and "`$.type`" in error:
        return "unknown message type - at `$.type`"
    if error == "Object missing required field `type`":
        return "missing field `type` - at `$.type`"
    return error


def _request_id(data: bytes | str) -> str | None:
    """The frame's string `request_id`, if it is a JSON object that has one (error path only)."""
    try:
        value = _any_decoder.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return None
    if isinstance(value, dict):
        request_id = value.get("request_id")
        if isinstance(request_id, str):
            return request_id
    return None


def _too_deep(data: bytes | str) -> bool:
    """Cheap upper bound on nesting: count brackets without parsing (strings may overcount)."""
    raw = data.encode() if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
        return False
    depth = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False
