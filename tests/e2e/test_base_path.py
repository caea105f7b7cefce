"""hubbub under HUBBUB_BASE_PATH=/chat (docs/DEPLOYMENT.md "Under a path"): every route
under the prefix and nothing at the root, directly and behind the shipped nginx site with
`location /chat/`, a WebSocket client and a REST client talking through it.

The prefix does not depend on the database, so these run on SQLite only.
"""

from __future__ import annotations

import re
import uuid
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

from tests.support.across import made_room
from tests.support.client import ChatClient, refused_status
from tests.support.flows import rest_messages, send
from tests.support.nginx import run_nginx
from tests.support.server import RunningServer, on_sqlite, run_server
from tests.support.server_api import API_KEY, ServerApi
from tests.support.tls import self_signed

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(120)]

BASE = "/chat"


def under_chat(tmp_path: Path, **overrides: Any) -> AbstractAsyncContextManager[RunningServer]:
    return run_server(on_sqlite(tmp_path, base_path=BASE, api_keys=(API_KEY,),
                                rate_limits=False, **overrides))


def root_of(server: RunningServer) -> str:
    return f"http://127.0.0.1:{server.port}"


async def test_every_route_is_under_the_prefix(tmp_path: Path) -> None:
    """Health, the REST API, the server API, /metrics, the page and its files answer under
    /chat; the same paths at the root are 404s."""
    async with under_chat(tmp_path) as server:
        user = server.user()
        async with httpx.AsyncClient(base_url=root_of(server), timeout=10,
                                     headers={"Authorization": f"Bearer {user.token}"}) as http:
            under = {path: await http.get(BASE + path) for path in (
                "/healthz", "/readyz", "/api/v1/users/me", "/metrics", "/",
                "/static/app.js", "/static/hubbub.js")}
            at_root = {path: await http.get(path) for path in (
                "/healthz", "/readyz", "/api/v1/users/me", "/metrics", "/",
                "/static/app.js", "/ws", "/api/v1/server/users/x")}
        backend = await ServerApi(server).get_user(user.id)
    assert {path: r.status_code for path, r in under.items()} == dict.fromkeys(under, 200)
    assert under["/api/v1/users/me"].json()["id"] == user.id
    assert {path: r.status_code for path, r in at_root.items()} == dict.fromkeys(at_root, 404)
    assert backend.status_code in (200, 404), backend.text  # reached the server API
    assert backend.headers["content-type"].startswith("application/json")


async def test_the_page_links_its_files_relative_to_the_prefix(tmp_path: Path) -> None:
    """/chat redirects to /chat/, and every file the page names resolves under /chat/, so
    the same page works at the root and under any prefix."""
    async with under_chat(tmp_path) as server, \
            httpx.AsyncClient(base_url=root_of(server), timeout=10) as http:
        redirect = await http.get(BASE)
        page = await http.get(BASE + "/")
        links = re.findall(r'(?:src|href)="([^"#]+)"', page.text)
        assert links, page.text
        fetched = {link: await http.get(urljoin(f"{root_of(server)}{BASE}/", link))
                   for link in links}
    assert redirect.status_code == 308
    assert redirect.headers["location"] == f"{BASE}/"
    assert {link: r.status_code for link, r in fetched.items()} == dict.fromkeys(fetched, 200)
    assert all(urljoin(f"{BASE}/", link).startswith(f"{BASE}/") for link in links)


async def test_a_websocket_under_the_prefix(tmp_path: Path) -> None:
    """/chat/ws greets and takes requests; /ws is no WebSocket endpoint."""
    async with under_chat(tmp_path) as server:
        user = server.user()
        client = await server.connect(user)
        assert server.ws_url.endswith("/chat/ws")
        assert client.connected["user_id"] == user.id
        status = await refused_status(f"ws://127.0.0.1:{server.port}/ws?token={user.token}")
    assert status == 404


async def test_cors_follows_the_prefix(tmp_path: Path) -> None:
    """The CORS rule is the prefixed API's: /chat/api/v1/… answers a preflight, the
    prefixed server API does not."""
    origin = "https://app.example.com"
    preflight = {"Origin": origin, "Access-Control-Request-Method": "GET"}
    async with under_chat(tmp_path, allowed_origins=(origin,)) as server, \
            httpx.AsyncClient(base_url=root_of(server), timeout=10) as http:
        api = await http.options(f"{BASE}/api/v1/users/me", headers=preflight)
        backend = await http.options(f"{BASE}/api/v1/server/users/x", headers=preflight)
    assert api.status_code == 204
    assert api.headers["access-control-allow-origin"] == origin
    assert "access-control-allow-origin" not in backend.headers


@pytest.mark.timeout(180)
async def test_behind_nginx_under_a_path(tmp_path: Path) -> None:
    """The shipped site rendered with BASE_PATH=/chat: a WebSocket client and a REST client
    reach hubbub through `location /chat/` (TLS, the upgrade, X-Forwarded-For), a message
    sent on the socket is read back over REST; nginx redirects /chat to /chat/ and passes
    nothing outside the prefix."""
    async with under_chat(tmp_path, trusted_proxies=("127.0.0.1",)) as server, \
            run_nginx(tmp_path / "nginx", [server.port] * 3, self_signed(tmp_path / "tls"),
                      base_path=BASE) as proxy:
        user = server.user()
        client = await ChatClient.connect(proxy.ws_url, user.token, ssl=proxy.tls)
        try:
            room = await made_room(proxy, user, [], kind="channel", name="prefixed")
            await client.request("JoinConversation", conversation_id=room)
            sent = await send(client, room, "through /chat/",
                              client_message_id=str(uuid.uuid4()))
            history = await rest_messages(proxy, user, room)
            async with proxy.http(user) as http:
                health = await http.get("/healthz")
        finally:
            await client.close()
        async with httpx.AsyncClient(verify=proxy.tls, timeout=10) as bare:
            root = f"https://127.0.0.1:{proxy.https_port}"
            redirect = await bare.get(f"{root}{BASE}")
            outside = await bare.get(f"{root}/healthz")
            page = await bare.get(f"{root}{BASE}/")
    assert [m["id"] for m in history] == [sent["id"]]
    assert [m["content"] for m in history] == ["through /chat/"]
    assert health.status_code == 200
    assert redirect.status_code in (301, 308)
    assert redirect.headers["location"].endswith(f"{BASE}/")
    assert outside.status_code == 404
    assert page.status_code == 200
    assert 'src="static/app.js"' in page.text
