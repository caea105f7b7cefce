"""The inbox's own cost on one instance, without sockets: what `delivery/inbox.py` spends
per message of a conversation with N local members, and per summary it sends.

    python -m bench.inbox --members 1000 --messages 2000 [--mentions ids|all]

Each message is the bus payload of a real `NewMessage` (one decode per instance, one
increment per member); each flush encodes one `ConversationSummary` per member. The sink
only counts, so this is the inbox's work alone, apart from framing and socket writes
(bench.fanout has the whole path).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from hubbub.delivery.inbox import Inbox
from hubbub.domain.inbox import InboxEntry
from hubbub.protocol.codec import encode
from hubbub.protocol.objects import MessageObject
from hubbub.protocol.server import NewMessage


def _payload(seq: int, mentions: list[str]) -> bytes:
    return encode(NewMessage(message=MessageObject(
        id=f"m-{seq}", conversation_id="room", sender_id="sender", sender_name="Sender",
        seq=seq, version=seq, content="a line of chat " * 4, parent_id=None,
        attachments=[], reactions=[], client_message_id=None,
        created_at="2026-01-01T00:00:00.000000Z", edited_at=None, deleted_at=None,
        mentions=mentions)))


# What each message mentions: nobody, the limit's 50 members by id, or everyone.
MENTIONS = {"none": [], "ids": [f"u-{i}" for i in range(50)], "all": ["@all"]}


async def measure(members: int, messages: int, mentions: str = "none") -> str:
    sent = 0

    def sink(user_id: str, payload: bytes) -> None:
        nonlocal sent
        sent += 1

    inbox = Inbox(sink, lambda _: None, lambda _: None, interval=3600, large_interval=3600)
    for i in range(members):
        inbox.open(f"u-{i}", [InboxEntry("room", 0, members, 0)])
    payloads = [_payload(seq, MENTIONS[mentions]) for seq in range(1, messages + 1)]
    started = time.perf_counter()
    for payload in payloads:
        inbox.on_new_message("room", payload)
    per_message = (time.perf_counter() - started) / messages
    started = time.perf_counter()
    inbox._flush(members > 1000)  # the timer's work, once
    flush = time.perf_counter() - started
    inbox.close_timers()
    return (f"inbox, one conversation of {members} local members, {messages} messages "
            f"(mentions: {mentions}):\n"
            f"per message {per_message * 1e6:.1f} µs ({per_message * 1e9 / members:.0f} ns "
            f"per member); one flush {flush * 1e3:.2f} ms for {sent} summaries "
            f"({flush * 1e6 / max(sent, 1):.2f} µs each)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.inbox", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=int, default=1000)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--mentions", choices=sorted(MENTIONS), default="none")
    args = ap.parse_args(argv)
    print(asyncio.run(measure(args.members, args.messages, args.mentions)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
