"""hubbub: a real-time WebSocket chat server that sits beside your backend."""

__version__ = "0.1.0"
