"""Outgoing events: the dispatcher that delivers the outbox (storage/outbox.py) to
`HUBBUB_WEBHOOK_URL`, signed per Standard Webhooks. docs/WEBHOOKS.md is the contract."""
