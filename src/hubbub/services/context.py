"""What every service needs: the seams, the clock and the id source, passed in once."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from hubbub.services.events import Events
from hubbub.services.membership import MembershipCache
from hubbub.storage.base import Store


def now_micros() -> int:
    return time.time_ns() // 1000


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class Actor:
    """The user on whose behalf a service call runs."""

    user_id: str
    name: str


@dataclass(slots=True)
class ServiceContext:
    store: Store
    events: Events
    members: MembershipCache
    clock: Callable[[], int] = field(default=now_micros)
    new_id: Callable[[], str] = field(default=new_id)
