"""Runnable examples of the SDK (hubbub.client) and the server API client; CI runs each."""
