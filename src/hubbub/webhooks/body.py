"""The request body of one event (Standard Webhooks' payload form):

    {"type": "message.created", "timestamp": "2026-…Z",
     "data": {"conversation_id": "…", "version": 12, "message": {…}}}

The outbox keeps `data` without the conversation id and version (they are columns, the
version filled in at commit for changes that take none): they are put in front here,
except for the events of no conversation (`user.erased`), whose conversation id is empty.
"""

from __future__ import annotations

import msgspec

from hubbub.domain.clock import format_time
from hubbub.storage.outbox import OutboxRow

_encode = msgspec.json.Encoder().encode


def body(row: OutboxRow) -> bytes:
    """The JSON body of `row`'s event; the same bytes on every attempt."""
    if row.conversation_id == "":  # services/webhook_events.py NO_CONVERSATION
        data = row.data
    else:
        head = b'{"conversation_id":%s,"version":%d' % (_encode(row.conversation_id),
                                                        row.version)
        rest = row.data[1:]  # the stored object without its "{"
        data = head + (b"}" if rest == b"}" else b"," + rest)
    return b'{"type":%s,"timestamp":%s,"data":%s}' % (
        _encode(row.type), _encode(format_time(row.created_at)), data)
