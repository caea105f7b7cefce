"""The WebSocket door (PROTOCOL.md §1–§6): admission, the endpoint, one session per
connection and the table of its actions, heartbeat and token expiry."""
