"""Redis adapters: the bus between instances (bus.py) and the state they count together
(ratelimit.py, counts.py, tickets.py, typing.py), over the shared plumbing of client.py
and the Lua scripts of scripts/ (loaded by scripts.py)."""
