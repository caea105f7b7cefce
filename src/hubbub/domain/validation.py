"""Content rules the wire types cannot express alone (PROTOCOL.md §2)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from hubbub.domain.errors import BadRequest
from hubbub.domain.limits import MAX_NAME_CHARS
from hubbub.domain.names import normalise_name
from hubbub.protocol.objects import Attachment


def check_message_body(content: str, attachments: Sequence[Attachment]) -> None:
    """A message needs non-blank content or at least one attachment; URLs must be http(s).

    Raises:
        BadRequest: naming the field at fault.
    """
    if not content.strip() and not attachments:
        raise BadRequest("a message needs non-blank content or an attachment - at `$.content`")
    for index, attachment in enumerate(attachments):
        check_url(attachment.url, f"$.attachments[{index}].url")
        if attachment.thumbnail_url is not None:
            check_url(attachment.thumbnail_url, f"$.attachments[{index}].thumbnail_url")


def check_edit(content: str) -> None:
    """An edit keeps a message readable: its content may not become blank."""
    if not content.strip():
        raise BadRequest("edited content may not be blank - at `$.content`")


def check_url(url: str, where: str) -> None:
    """Attachment URLs are absolute http(s) URLs with a host."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise BadRequest(f"not a valid URL - at `{where}`") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadRequest(f"URL must be http(s) with a host - at `{where}`")


def check_conversation_name(kind: str, name: str | None) -> str | None:
    """`direct` has no name; `group` and `channel` need 1–100 characters (§2), counted after
    normalising (domain/names.py: what is left once controls and the like are dropped)."""
    if kind == "direct":
        if name is not None:
            raise BadRequest("a direct conversation has no name - at `$.name`")
        return None
    name = None if name is None else normalise_name(name)
    if not name:
        raise BadRequest(f"a {kind} needs a name - at `$.name`")
    if len(name) > MAX_NAME_CHARS:
        raise BadRequest(f"name longer than {MAX_NAME_CHARS} characters - at `$.name`")
    return name
