"""The pre-send moderation hook (docs/WEBHOOKS.md, "Moderation"): before a message or an
edit is stored, a `Moderator` allows it, rejects it (the sender gets `Error{code:"REJECTED"}`,
nothing is stored) or replaces its content.

The review runs in the sender's request, before the write is queued: a slow moderator
delays that one send, never the group commit the others share. What happens when the
moderator does not answer in time is the adapter's policy (open: allow; closed: reject).
"""

from __future__ import annotations

from typing import Literal, Protocol

import msgspec

from hubbub.protocol.objects import Attachment


class Review(msgspec.Struct, frozen=True):
    """What the moderator sees of a message about to be stored."""

    conversation_id: str
    sender_id: str
    content: str
    attachments: list[Attachment]
    parent_id: str | None
    # "edit": an edit of the stored message `message_id` (its attachments and parent are
    # the stored ones); "send": a new message (no id yet).
    action: Literal["send", "edit"] = "send"
    message_id: str | None = None


class Verdict(msgspec.Struct, frozen=True, omit_defaults=True):
    """The moderator's answer: `replace` carries the content to store instead; `reason`
    of a `reject` is shown to the sender."""

    action: Literal["allow", "reject", "replace"]
    content: str | None = None
    reason: str | None = None


ALLOW = Verdict("allow")


class Moderator(Protocol):
    async def review(self, review: Review) -> Verdict: ...
