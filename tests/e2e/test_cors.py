"""CORS for the user REST API (docs/DEPLOYMENT.md "A web app on another origin"), over real
HTTP to a real server: preflights, answers and their errors, and the server API left out.

CORS does not depend on the database, so these run on SQLite only.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import RunningServer, on_sqlite, run_server
from tests.support.server_api import API_KEY, PREFIX, ServerApi

pytestmark = pytest.mark.asyncio(loop_scope="session")

APP = "https://app.example.com"
OTHER = "https://evil.example.net"
ORIGINS = (APP, "https://second.example.com")


def serving(tmp_path: Path, **overrides: Any) -> AbstractAsyncContextManager[RunningServer]:
    values: dict[str, Any] = {"allowed_origins": ORIGINS, "api_keys": (API_KEY,),
                              "rate_limits": False, **overrides}
    return run_server(on_sqlite(tmp_path, **values))


def preflight_headers(origin: str, method: str = "POST") -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type,idempotency-key"}


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items()
            if name.lower().startswith("access-control-")}


def varies_on_origin(response: httpx.Response) -> bool:
    return any("origin" in [part.strip().lower() for part in value.split(",")]
               for value in response.headers.get_list("vary"))


async def test_a_preflight_from_an_allowed_origin_names_methods_and_headers(
        tmp_path: Path) -> None:
    """OPTIONS with Access-Control-Request-*: 204, the origin echoed, the methods and the
    three request headers a client sends, a max age, `Vary: Origin`, no credentials."""
    async with serving(tmp_path) as server, server.http() as http:
        response = await http.options("/api/v1/conversations", headers=preflight_headers(APP))
        second = await http.options("/api/v1/conversations/x/members/y",
                                    headers=preflight_headers(ORIGINS[1], "PUT"))
    assert response.status_code == 204, response.text
    assert response.headers["access-control-allow-origin"] == APP
    methods = {m.strip() for m in response.headers["access-control-allow-methods"].split(",")}
    assert {"GET", "POST", "PUT", "DELETE"} <= methods
    allowed = {h.strip().lower()
               for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key"} <= allowed
    assert int(response.headers["access-control-max-age"]) > 0
    assert varies_on_origin(response)
    assert "access-control-allow-credentials" not in response.headers
    assert second.status_code == 204
    assert second.headers["access-control-allow-origin"] == ORIGINS[1]


async def test_a_disallowed_origin_gets_no_cors_headers_but_is_served(
        tmp_path: Path) -> None:
    """A preflight from an origin not on the list gets no CORS header (so the browser
    stops); the request itself, as a non-browser client sends it, still works."""
    async with serving(tmp_path) as server:
        user = server.user()
        async with server.http(user) as http:
            refused = await http.options("/api/v1/users/me", headers=preflight_headers(OTHER))
            served = await http.get("/api/v1/users/me", headers={"Origin": OTHER})
            no_origin = await http.get("/api/v1/users/me")
    assert cors_headers(refused) == {}
    assert refused.status_code >= 400
    assert served.status_code == 200, served.text
    assert served.json()["id"] == user.id
    assert cors_headers(served) == {}
    assert varies_on_origin(served)  # a cache keeps the answers of each origin apart
    assert no_origin.status_code == 200
    assert cors_headers(no_origin) == {}
    assert varies_on_origin(no_origin)


async def test_answers_to_an_allowed_origin_carry_cors_headers(tmp_path: Path) -> None:
    """A successful GET and POST, echoing the origin, exposing the request id."""
    async with serving(tmp_path) as server:
        user = server.user()
        async with server.http(user) as http:
            me = await http.get("/api/v1/users/me", headers={"Origin": APP})
            created = await http.post("/api/v1/conversations", headers={"Origin": APP},
                                      json={"kind": "channel", "name": "cors"})
    for response in (me, created):
        assert response.status_code in (200, 201), response.text
        assert response.headers["access-control-allow-origin"] == APP
        assert "x-request-id" in response.headers["access-control-expose-headers"].lower()
        assert varies_on_origin(response)
        assert "access-control-allow-credentials" not in response.headers


async def test_errors_carry_cors_headers_so_a_page_can_read_them(tmp_path: Path) -> None:
    """401 (no token), 400 (a bad body), 404 (no such path) and 429 (with its Retry-After
    exposed): each readable by the page, its §7 error body intact."""
    async with serving(tmp_path, rate_limits=True, other_rate=0.01, other_burst=1) as server:
        user = server.user()
        async with server.http() as anonymous:
            unauthorized = await anonymous.get("/api/v1/conversations",
                                               headers={"Origin": APP})
        async with server.http(user) as http:
            bad = await http.post("/api/v1/conversations", headers={"Origin": APP},
                                  content=b"{not json")
            missing = await http.get("/api/v1/nothing-here", headers={"Origin": APP})
            limited = None
            for _ in range(5):
                answer = await http.get("/api/v1/users/me", headers={"Origin": APP})
                if answer.status_code == 429:
                    limited = answer
                    break
    expected = [(unauthorized, 401), (bad, 400), (missing, 404)]
    assert limited is not None, "the bucket of one never ran out"
    expected.append((limited, 429))
    for response, status in expected:
        assert response.status_code == status, response.text
        assert response.headers["access-control-allow-origin"] == APP, status
        assert response.json()["error"]["code"], status
    assert "retry-after" in limited.headers["access-control-expose-headers"].lower()
    assert int(limited.headers["retry-after"]) >= 1


async def test_the_server_api_sends_no_cors_headers(tmp_path: Path) -> None:
    """/api/v1/server/ is for backends only: no preflight answer, no CORS header on its
    answers, even from an allowed origin with a valid key."""
    async with serving(tmp_path) as server:
        backend = ServerApi(server)
        put = await backend.call("PUT", "/users/cors-user", json={"display_name": "C"},
                                 headers={"Origin": APP})
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            preflight = await http.options(f"{PREFIX}/users/cors-user",
                                           headers=preflight_headers(APP, "PUT"))
            bare = await http.options(PREFIX, headers=preflight_headers(APP, "GET"))
    assert put.status_code in (200, 201), put.text
    assert cors_headers(put) == {}
    assert not varies_on_origin(put)
    for response in (preflight, bare):
        assert response.status_code != 204
        assert cors_headers(response) == {}


async def test_any_origin_with_a_star(tmp_path: Path) -> None:
    """`*` on the list: `Access-Control-Allow-Origin: *` for any origin (no credentials
    are involved, so the wildcard is valid)."""
    async with serving(tmp_path, allowed_origins=("*",)) as server, server.http() as http:
        response = await http.options("/api/v1/users/me",
                                      headers=preflight_headers(OTHER, "GET"))
        answer = await http.get("/api/v1/users/me", headers={"Origin": OTHER})
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert answer.status_code == 401
    assert answer.headers["access-control-allow-origin"] == "*"


async def test_without_a_list_no_cors_at_all(tmp_path: Path) -> None:
    """HUBBUB_ALLOWED_ORIGINS unset: only the page's own origin reads the API."""
    async with serving(tmp_path, allowed_origins=()) as server, server.http() as http:
        response = await http.options("/api/v1/users/me",
                                      headers=preflight_headers(APP, "GET"))
        answer = await http.get("/api/v1/users/me", headers={"Origin": APP})
    assert cors_headers(response) == {}
    assert cors_headers(answer) == {}
    assert answer.status_code == 401


async def test_cors_is_only_for_the_api(tmp_path: Path) -> None:
    """Health and the client's page are not API answers: no CORS header there."""
    async with serving(tmp_path) as server, server.http() as http:
        health = await http.get("/healthz", headers={"Origin": APP})
        page = await http.get("/", headers={"Origin": APP})
    assert health.status_code == 200
    assert page.status_code == 200
    assert cors_headers(health) == {}
    assert cors_headers(page) == {}
