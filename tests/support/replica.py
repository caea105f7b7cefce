"""A client's copy of one conversation, built the way a client builds it: from a history
page, then from broadcast change events, or from `SyncChunk` pages after a gap.

`state()` is comparable with a fresh `FetchHistory`; the order of reactions and of their
`user_ids` is not significant (see docs/DECISIONS.md), so it is normalised.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.support.client import ChatClient
from tests.support.flows import TIMEOUT

CHANGE_EVENTS = ("NewMessage", "MessageEdited", "MessageDeleted", "ReactionAdded",
                 "ReactionRemoved")


def event_version(frame: dict[str, Any]) -> int:
    """The conversation version a change event carries."""
    if frame["type"] in ("NewMessage", "MessageEdited"):
        return int(frame["message"]["version"])
    return int(frame["version"])


def normalised(message: dict[str, Any]) -> dict[str, Any]:
    """A message with its reactions in a canonical order."""
    result = dict(message)
    result["reactions"] = sorted(
        ({**r, "user_ids": sorted(r["user_ids"])} for r in message["reactions"]),
        key=lambda r: r["emoji"],
    )
    return result


class Replica:
    def __init__(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id
        self.messages: dict[str, dict[str, Any]] = {}
        self.version = 0
        self.applied = 0

    def load(self, messages: list[dict[str, Any]]) -> None:
        """Take in full message objects (a history or sync page): the newer copy wins."""
        for message in messages:
            held = self.messages.get(message["id"])
            if held is None or held["version"] <= message["version"]:
                self.messages[message["id"]] = copy.deepcopy(message)
            self.version = max(self.version, message["version"])

    def has_gap(self, frame: dict[str, Any]) -> bool:
        """Whether a change event skips versions this replica has not seen."""
        return event_version(frame) > self.version + 1

    def offer(self, frame: dict[str, Any]) -> bool:
        """Apply a change event as a client would: skip one already covered (by a sync),
        apply the next one; False on a gap, which the caller repairs with `catch_up`."""
        version = event_version(frame)
        if version <= self.version:
            return True
        if version > self.version + 1:
            return False
        self.apply(frame)
        return True

    def apply(self, frame: dict[str, Any]) -> None:
        """Apply one change event of this conversation."""
        kind = frame["type"]
        assert kind in CHANGE_EVENTS, frame
        version = event_version(frame)
        if kind in ("NewMessage", "MessageEdited"):
            self.messages[frame["message"]["id"]] = copy.deepcopy(frame["message"])
        else:
            message = self.messages[frame["message_id"]]
            message["version"] = version
            if kind == "MessageDeleted":
                message.update(content="", attachments=[], reactions=[],
                               deleted_at=frame["deleted_at"])
            elif kind == "ReactionAdded":
                _add_reaction(message, frame["emoji"], frame["user_id"])
            else:
                _remove_reaction(message, frame["emoji"], frame["user_id"])
        self.version = max(self.version, version)
        self.applied += 1

    async def catch_up(self, client: ChatClient, limit: int = 100) -> int:
        """Sync from the last version seen until nothing is left; returns the pages read."""
        pages = 0
        while True:
            reply = await client.request("SyncMessages", conversation_id=self.conversation_id,
                                         since_version=self.version, limit=limit,
                                         timeout=TIMEOUT)
            assert reply["type"] == "SyncChunk", reply
            pages += 1
            self.load(reply["messages"])
            self.version = max(self.version, reply["last_version"])
            if not reply["has_more"]:
                return pages

    def state(self) -> list[dict[str, Any]]:
        """The messages in `seq` order, normalised."""
        return [normalised(m) for m in sorted(self.messages.values(), key=lambda m: m["seq"])]


def _add_reaction(message: dict[str, Any], emoji: str, user_id: str) -> None:
    for reaction in message["reactions"]:
        if reaction["emoji"] == emoji:
            assert user_id not in reaction["user_ids"], (message, emoji, user_id)
            reaction["user_ids"].append(user_id)
            reaction["count"] += 1
            return
    message["reactions"].append({"emoji": emoji, "count": 1, "user_ids": [user_id]})


def _remove_reaction(message: dict[str, Any], emoji: str, user_id: str) -> None:
    for reaction in message["reactions"]:
        if reaction["emoji"] == emoji:
            reaction["user_ids"].remove(user_id)
            reaction["count"] -= 1
            if not reaction["count"]:
                message["reactions"].remove(reaction)
            return
    raise AssertionError(f"no {emoji} on {message['id']} to remove")


def history_state(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A fresh history, normalised like `Replica.state()`."""
    return [normalised(m) for m in messages]
