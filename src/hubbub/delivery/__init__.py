"""Delivery: the hub that fans each bus event out to the local connections, their
outboxes, the per-conversation order gate and the repair of what the bus lost."""
