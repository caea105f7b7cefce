"""A bot on the Python SDK: it echoes what others say in a conversation and answers the
slash command `/roll` (`/roll` is a six-sided die, `/roll 20` a twenty-sided one).

    python examples/echo_bot.py --url ws://127.0.0.1:8080/ws --conversation ID
    # the bot's token in HUBBUB_TOKEN (e.g. from `hubbub token --name echo-bot`)

It reconnects by itself and, after a reconnect, answers the messages it missed meanwhile
once each (the SDK syncs them in order); its replies are idempotent by the id of the
message they answer, so a retried reply is stored once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random

from hubbub.client import Client
from hubbub.protocol.objects import MessageObject
from hubbub.protocol.server import NewMessage

MAX_SIDES = 1_000_000


def reply(content: str, rng: random.Random) -> str | None:
    """The bot's answer to a message's content (None: stay quiet)."""
    text = content.strip()
    if not text:
        return None
    if text == "/roll" or text.startswith("/roll "):
        argument = text[len("/roll"):].strip() or "6"
        if not argument.isdigit() or not 2 <= int(argument) <= MAX_SIDES:
            return f"usage: /roll [sides], sides from 2 to {MAX_SIDES}"
        return f"🎲 {rng.randint(1, int(argument))} (d{int(argument)})"
    if text.startswith("/"):
        return f"unknown command {text.split()[0]}; try /roll"
    return f"echo: {text}"


def answers(message: MessageObject, me: str) -> bool:
    """Whether the bot answers this message: someone else's, live, not a system notice."""
    return (message.kind == "user" and message.sender_id != me
            and message.deleted_at is None)


async def run(url: str, token: str, conversation_id: str, rng: random.Random) -> None:
    async with Client(url, token) as chat:
        await chat.join(conversation_id)
        print(f"echo bot ready in {conversation_id}", flush=True)
        async for event in chat.events():
            if not isinstance(event, NewMessage):
                continue
            message = event.message
            if message.conversation_id != conversation_id or not answers(message,
                                                                          chat.user_id):
                continue
            text = reply(message.content, rng)
            if text is not None:
                await chat.send(conversation_id, text, parent_id=message.id,
                                client_message_id=f"echo-{message.id}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="ws://127.0.0.1:8080/ws")
    parser.add_argument("--conversation", required=True, help="the conversation id")
    args = parser.parse_args()
    token = os.environ.get("HUBBUB_TOKEN")
    if not token:
        parser.error("set HUBBUB_TOKEN to the bot's token")
    asyncio.run(run(args.url, token, args.conversation, random.Random()))


if __name__ == "__main__":
    main()
