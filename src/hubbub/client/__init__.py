"""The Python SDK of hubbub: an asyncio client of the WebSocket protocol (PROTOCOL.md).

It speaks only the public protocol, with hubbub.protocol's typed messages; it imports
nothing of the server.
"""

from hubbub.client.backoff import Backoff
from hubbub.client.client import Client, Event, EventHandler
from hubbub.client.errors import AuthenticationError, ClientClosed, HubbubError, RequestError

__all__ = ["AuthenticationError", "Backoff", "Client", "ClientClosed", "Event",
           "EventHandler", "HubbubError", "RequestError"]
