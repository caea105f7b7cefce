"""The WebSocket's action table (transport/websocket/actions.py): one row per client
message type of PROTOCOL.md §3, each answering with the response type §3 names."""

from __future__ import annotations

import inspect
import typing

from hubbub.protocol import client as c
from hubbub.transport.websocket.actions import ACTIONS


def test_every_client_message_type_has_a_row() -> None:
    """The table's keys are exactly the members of the client message union."""
    assert set(ACTIONS) == set(typing.get_args(c.AnyClientMessage))


def test_each_row_takes_the_message_of_its_key() -> None:
    """A row's message parameter is annotated with the type it is filed under."""
    for kind, row in ACTIONS.items():
        hints = typing.get_type_hints(row)
        message = list(inspect.signature(row).parameters)[-1]
        assert hints[message] is kind, (kind, row)
