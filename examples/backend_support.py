"""A backend opening a support conversation through the server API (PROTOCOL.md §8): it
creates (or updates) the customer and the agent, creates the customer's support
conversation — once, however often it runs (an Idempotency-Key) — and posts a system
notice in it, also once (a client_message_id). A plain script on hubbub.server_api; a web
backend (FastAPI, Django) calls the same methods from its request handlers.

    HUBBUB_API_KEY=... python examples/backend_support.py --url http://127.0.0.1:8080 \\
        --customer 42 --agent 7
"""

from __future__ import annotations

import argparse
import asyncio
import os

from hubbub.server_api import ServerApi

NOTICE = "Thanks for reaching out! An agent will be with you shortly."


async def open_support(api: ServerApi, customer_id: str, agent_id: str,
                       customer_name: str = "Customer", agent_name: str = "Support") -> str:
    """The id of the customer's support conversation, created on the first call."""
    await api.put_user(customer_id, name=customer_name)
    await api.put_user(agent_id, name=agent_name)
    room = await api.create_conversation(
        "group", name=f"Support for {customer_name}", owner_id=agent_id,
        member_ids=[customer_id], idempotency_key=f"support-{customer_id}")
    await api.post_message(room.id, NOTICE, client_message_id=f"support-welcome-{room.id}")
    return room.id


async def run(url: str, api_key: str, customer: str, agent: str) -> None:
    async with ServerApi(url, api_key) as api:
        print(await open_support(api, customer, agent), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--customer", required=True, help="the customer's user id")
    parser.add_argument("--agent", required=True, help="the agent's user id")
    args = parser.parse_args()
    key = os.environ.get("HUBBUB_API_KEY")
    if not key:
        parser.error("set HUBBUB_API_KEY to one of the server's HUBBUB_API_KEYS")
    asyncio.run(run(args.url, key, args.customer, args.agent))


if __name__ == "__main__":
    main()
