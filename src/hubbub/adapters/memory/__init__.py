"""In-process adapters: the bus and the coordination state of a single instance, also the
fallbacks the Redis adapters count in while Redis is down."""
