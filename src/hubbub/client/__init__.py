"""The Python SDK of hubbub: an asyncio client of the WebSocket protocol (PROTOCOL.md).

It speaks only the public protocol, with hubbub.protocol's typed messages; it imports
nothing of the server.

`Client` is the SDK: reconnects, requests answered once, events once and in order.
`Socket` is the one connection it runs on, for a caller that wants none of that: typed
`receive`/`send`, and the frames as they are on the wire (`receive_text`, `send_text`,
`send_binary`); hubbub's own tests and benchmarks are clients through it.
"""

from hubbub.client.backoff import Backoff
from hubbub.client.client import Client, Event, EventHandler
from hubbub.client.errors import (
    AuthenticationError,
    ClientClosed,
    HandshakeFailed,
    HubbubError,
    RequestError,
    Unreachable,
)
from hubbub.client.socket import Socket

__all__ = ["AuthenticationError", "Backoff", "Client", "ClientClosed", "Event",
           "EventHandler", "HandshakeFailed", "HubbubError", "RequestError", "Socket",
           "Unreachable"]
