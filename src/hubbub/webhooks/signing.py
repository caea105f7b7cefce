"""Standard Webhooks signatures (https://www.standardwebhooks.com/, "Signature scheme").

The key is `whsec_` + base64; each request carries `webhook-id` (the event's, the same on
every retry so receivers can drop repeats), `webhook-timestamp` (seconds, of this attempt)
and `webhook-signature`: `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

PREFIX = "whsec_"


def parse_secret(secret: str) -> bytes:
    """The key bytes of a `whsec_<base64>` secret.

    Raises:
        ValueError: not of that form (the message never echoes the secret).
    """
    if not secret.startswith(PREFIX):
        raise ValueError("a Standard Webhooks key: `whsec_` followed by base64")
    try:
        key = base64.b64decode(secret[len(PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a Standard Webhooks key: `whsec_` followed by valid base64"
                         ) from None
    if len(key) < 16:
        raise ValueError("a Standard Webhooks key of at least 16 bytes (24 and more "
                         "base64 characters)")
    return key


def headers(key: bytes, event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers that sign `body` for this attempt."""
    signed = b"%s.%d.%s" % (event_id.encode(), timestamp, body)
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return {"webhook-id": event_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": "v1," + base64.b64encode(digest).decode()}
