"""The HTTP door (PROTOCOL.md §7): one module per resource, on the same use cases as the
WebSocket."""
