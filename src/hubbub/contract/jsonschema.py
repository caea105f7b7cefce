"""JSON Schema of every WebSocket message (PROTOCOL.md §3, §4), from the msgspec types.

msgspec names two structs of the same name by their module (a client and a server
`CallOffer`); the documents call them `ClientCallOffer` and `ServerCallOffer` (and the two
doors' bodies `UserPostMessage` and `ServerPostMessage`). Patterns are
written for Python's `re` (`\\Z`: the end, not before a final newline); a JSON Schema
pattern is an ECMA-262 one, where `$` already means the end, so `\\Z` becomes `$`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from hubbub.protocol.client import AnyClientMessage
from hubbub.protocol.server import AnyServerMessage

SCHEMA_ID = "https://hubbub.dev/contract/hubbub.schema.json"
# Where msgspec must qualify a name: the module's side, as a prefix (any other module keeps
# msgspec's dotted name, still a valid component name).
_PREFIXES = {"hubbub.protocol.client.": "Client", "hubbub.protocol.server.": "Server",
             "hubbub.transport.http.conversations.": "User",
             "hubbub.transport.http.members.": "User", "hubbub.transport.http.messages.": "User",
             "hubbub.transport.server_api.bodies.": "Server"}


def short_name(name: str) -> str:
    """The component name a document uses for msgspec's `name`."""
    for prefix, side in _PREFIXES.items():
        if name.startswith(prefix):
            return side + name[len(prefix):]
    return name


def portable(node: Any, ref_prefix: str) -> Any:
    """`node` with refs renamed (see short_name) and patterns in ECMA-262 form."""
    if isinstance(node, list):
        return [portable(item, ref_prefix) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str) and value.startswith(ref_prefix):
            value = ref_prefix + short_name(value[len(ref_prefix):])
        elif key == "pattern" and isinstance(value, str):
            value = value.replace("\\Z", "$")
        elif key == "mapping" and isinstance(value, dict):
            value = {tag: portable({"$ref": ref}, ref_prefix)["$ref"]
                     for tag, ref in value.items()}
        else:
            value = portable(value, ref_prefix)
        out[key] = value
    return out


def components(types: Iterable[Any], ref_prefix: str
               ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The schemas of `types` and the named components they refer to, made portable."""
    schemas, named = msgspec.json.schema_components(list(types),
                                                    ref_template=ref_prefix + "{name}")
    return ([portable(schema, ref_prefix) for schema in schemas],
            {short_name(name): portable(schema, ref_prefix)
             for name, schema in sorted(named.items())})


def message_unions(ref_prefix: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The client union, the server union (each an `anyOf` with a `type` discriminator) and
    the components both refer to."""
    (client, server), named = components([AnyClientMessage, AnyServerMessage], ref_prefix)
    return client, server, named


def message_schema() -> dict[str, Any]:
    """The standalone JSON Schema (2020-12): `$defs/ClientMessage`, `$defs/ServerMessage`
    and one `$defs` entry per message and shared object; the document itself accepts any
    one frame of either direction."""
    prefix = "#/$defs/"
    client, server, named = message_unions(prefix)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "hubbub WebSocket messages, protocol version 1",
        "description": "Every client and server frame of docs/PROTOCOL.md §3 and §4, "
                       "generated from hubbub.protocol (python -m hubbub.contract).",
        "anyOf": [{"$ref": prefix + "ClientMessage"}, {"$ref": prefix + "ServerMessage"}],
        "$defs": {"ClientMessage": {"title": "ClientMessage", **client},
                  "ServerMessage": {"title": "ServerMessage", **server},
                  **named},
    }


def union_members(union: dict[str, Any]) -> list[str]:
    """The component names an `anyOf` of refs lists, in order."""
    return [ref["$ref"].rsplit("/", 1)[1] for ref in union["anyOf"]]
