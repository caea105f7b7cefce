"""State every instance must share (rate-limit buckets, presence and connection counts),
kept in Redis. The services see only their seams (services/ratelimit.py,
services/presence.py, services/connection_limit.py); app.py picks these adapters when a
Redis URL is configured and the in-memory ones otherwise.
"""
