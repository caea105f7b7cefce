"""OpenAPI 3.1 of the REST API (§7, a user's JWT) and the server API (§8, an API key),
from contract/routes.py and the msgspec types the handlers decode and answer with."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

import msgspec

from hubbub.contract import shapes
from hubbub.contract.jsonschema import components, portable
from hubbub.contract.routes import ROUTES, Route
from hubbub.protocol.objects import Id, UserId

PREFIX = "#/components/schemas/"
_SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "public": [], "user": [{"userJwt": []}], "server": [{"apiKey": []}]}
_AUTH_ERRORS = {"public": (), "user": (400, 401, 429), "server": (400, 401, 404)}
_PARAM = re.compile(r"{(\w+)}")


def _schema(kind: Any) -> dict[str, Any]:
    """An inline schema: for a type without named parts (a path parameter)."""
    schema: dict[str, Any] = portable(msgspec.json.schema(kind), PREFIX)
    return schema


class _Schemas:
    """Every body and response type's schema, from one `schema_components` call so that
    each struct is one named component."""

    def __init__(self) -> None:
        kinds = [k for r in ROUTES for k in (r.body, *r.responses.values()) if k is not None]
        kinds = list(dict.fromkeys([*kinds, shapes.Error]))
        schemas, self.named = components(kinds, PREFIX)
        self._by_kind = dict(zip(kinds, schemas, strict=True))

    def body(self, kind: Any) -> dict[str, Any]:
        return {"content": {"application/json": {"schema": self._by_kind[kind]}}}


def _path_parameters(route: Route) -> list[dict[str, Any]]:
    """`{id}` is a UUID; `{user_id}` is the backend's id on the user API and, as the server
    API reads it today, a UUID there."""
    params = []
    for name in _PARAM.findall(route.path):
        kind = UserId if name == "user_id" and route.door == "user" else Id
        params.append({"name": name, "in": "path", "required": True, "schema": _schema(kind)})
    return params


def _parameters(route: Route) -> list[dict[str, Any]]:
    return (_path_parameters(route)
            + [{"name": q.name, "in": "query", "required": False, "schema": q.schema,
                "description": q.description} for q in route.query]
            + [{"name": h.name, "in": "header", "required": False, "schema": h.schema,
                "description": h.description} for h in route.headers])


def _responses(route: Route, schemas: _Schemas) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, kind in sorted(route.responses.items()):
        entry: dict[str, Any] = {"description": HTTPStatus(status).phrase}
        if kind is not None:
            entry.update(schemas.body(kind))
        out[str(status)] = entry
    for status in sorted({*_AUTH_ERRORS[route.door], *route.errors} - set(route.responses)):
        name = "RateLimited" if status == 429 else "Error"
        out[str(status)] = {"$ref": f"#/components/responses/{name}"}
    out["default"] = {"$ref": "#/components/responses/Error"}
    return out


def _operation(route: Route, schemas: _Schemas) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": _operation_id(route), "summary": route.summary,
        "tags": [route.door], "security": _SECURITY[route.door],
        "responses": _responses(route, schemas)}
    parameters = _parameters(route)
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {"required": True, **schemas.body(route.body)}
    return operation


def _operation_id(route: Route) -> str:
    words = [w for w in re.split(r"[/{}\-_]+", route.path) if w and w not in ("api", "v1")]
    return route.method.lower() + "".join(w[:1].upper() + w[1:] for w in words)


def _components(schemas: _Schemas) -> dict[str, Any]:
    return {
        "schemas": schemas.named,
        "responses": {"Error": {
            "description": "§7: the error, with the status that fits (429 carries "
                           "Retry-After in seconds)",
            "content": {"application/json": {"schema": {"$ref": PREFIX + "Error"}}}},
            "RateLimited": {
                "description": "§6: the caller's bucket is empty (code RATE_LIMITED)",
                "headers": {"Retry-After": {
                    "description": "seconds until a retry can succeed",
                    "schema": {"type": "integer", "minimum": 1}}},
                "content": {"application/json": {"schema": {"$ref": PREFIX + "Error"}}}}},
        "securitySchemes": {
            "userJwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                        "description": "a user's token, signed by the backend (§1)"},
            "apiKey": {"type": "http", "scheme": "bearer",
                       "description": "one of HUBBUB_API_KEYS (§8)"}},
    }


def openapi() -> dict[str, Any]:
    """The whole document; the same types give the same bytes (the drift test relies on it)."""
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "hubbub HTTP API", "version": "1",
                 "description": "docs/PROTOCOL.md §7 (a user's JWT) and §8 (the backend's "
                                "API key). Generated by python -m hubbub.contract."},
        "tags": [{"name": "public", "description": "health checks, no credentials"},
                 {"name": "user", "description": "§7: Authorization: Bearer <jwt>"},
                 {"name": "server", "description": "§8: Authorization: Bearer <api key>"}],
        "paths": paths,
        "components": _components(schemas),
    }
