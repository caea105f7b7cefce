"""aiohttp adapters: the WebSocket endpoint, REST, health, metrics, and the fan-out path."""
