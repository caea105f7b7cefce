"""State every instance must share (rate-limit buckets, presence and connection counts,
tickets, typing states), kept in Redis. The services see only their seams
(services/ratelimit.py, presence.py, connection_limit.py, tickets.py, typing.py); app.py
picks these adapters when a Redis URL is configured and the in-memory ones otherwise.
"""
