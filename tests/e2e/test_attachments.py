"""Attachment metadata at the limits of PROTOCOL.md §2, on the socket and over REST.

The WebSocket refusals of each rule are in test_messaging.py; here: the largest valid
values are accepted, and `POST …/messages` enforces the same rules with the same wording.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.flows import all_messages, attachment, joined, send
from tests.support.server import RunningServer

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_the_largest_valid_attachments_are_accepted(server: RunningServer) -> None:
    """Ten attachments, a 2048-character URL, a 255-character name and size 0 all pass."""
    alice = server.user()
    room = (await server.create_conversation(alice))["id"]
    client = await joined(server, alice, room)
    url = "https://files.example/" + "u" * (2048 - len("https://files.example/"))
    files = [attachment(url=url, name="n" * 255, size=0, mime_type="application/vnd.a+json")
             for _ in range(10)]
    message = await send(client, room, "", attachments=files)
    assert message["attachments"] == files
    assert (await all_messages(client, room))[0]["attachments"] == files


async def test_optional_attachment_fields_may_be_left_out(server: RunningServer) -> None:
    """`width`, `height`, `duration_ms` and `thumbnail_url` are optional; omitted, they
    stay out of the stored object."""
    alice = server.user()
    room = (await server.create_conversation(alice))["id"]
    client = await joined(server, alice, room)
    bare = {"url": "http://files.example/a.txt", "name": "a.txt", "mime_type": "text/plain",
            "size": 12}
    full = attachment(duration_ms=1500, thumbnail_url="https://files.example/t.png")
    message = await send(client, room, "files", attachments=[bare, full])
    assert message["attachments"] == [bare, full]


BAD: dict[str, tuple[Any, str]] = {
    "eleven": ([attachment() for _ in range(11)], "$.attachments"),
    "ftp_url": ([attachment(url="ftp://files.example/a")], "$.attachments[0].url"),
    "long_url": ([attachment(url="https://x.example/" + "a" * 2031)], "$.attachments[0].url"),
    "long_name": ([attachment(name="n" * 256)], "$.attachments[0].name"),
    "bad_mime": ([attachment(mime_type="image")], "$.attachments[0].mime_type"),
    "negative_size": ([attachment(size=-1)], "$.attachments[0].size"),
}


@pytest.mark.parametrize("case", list(BAD))
async def test_rest_refuses_bad_attachments_naming_the_field(server: RunningServer,
                                                             case: str) -> None:
    """`POST …/messages` answers 400 BAD_REQUEST naming the field; nothing is stored."""
    alice = server.user()
    room = (await server.create_conversation(alice))["id"]
    value, field = BAD[case]
    async with server.http(alice) as http:
        response = await http.post(f"/api/v1/conversations/{room}/messages",
                                   json={"content": "x", "attachments": value})
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "BAD_REQUEST"
        assert f"`{field}`" in error["message"]
        listing = await http.get(f"/api/v1/conversations/{room}/messages")
    assert listing.json()["messages"] == []
