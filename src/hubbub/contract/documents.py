"""The committed documents: their names under docs/contract/ and their exact bytes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hubbub.contract.asyncapi import asyncapi
from hubbub.contract.jsonschema import message_schema
from hubbub.contract.openapi import openapi

DIRECTORY = "docs/contract"
BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    "hubbub.schema.json": message_schema,
    "asyncapi.json": asyncapi,
    "openapi.json": openapi,
}


def render(document: dict[str, Any]) -> bytes:
    """Stable bytes: indented, keys in the builders' order, a final newline."""
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


def documents() -> dict[str, bytes]:
    return {name: render(build()) for name, build in BUILDERS.items()}
