"""Message, conversation and call ids (services/context.py `new_id`): UUIDv7, unique, and
time-ordered, with the random part drawn from a pooled `os.urandom`."""

from __future__ import annotations

import os
import time
import uuid

from hubbub.services.context import new_id


def test_ids_are_canonical_version_7_uuids() -> None:
    for _ in range(100):
        raw = new_id()
        parsed = uuid.UUID(raw)
        assert str(parsed) == raw  # lowercase, hyphenated
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122


def test_ids_carry_the_creation_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    stamp = int(new_id().replace("-", "")[:12], 16)
    after = time.time_ns() // 1_000_000
    assert before <= stamp <= after


def test_ids_are_unique_across_many_refills_of_the_pool() -> None:
    ids = [new_id() for _ in range(20_000)]  # ~50 pools of random bytes
    assert len(set(ids)) == len(ids)
    random_parts = {i.replace("-", "")[16:] for i in ids}
    assert len(random_parts) == len(ids)


def test_a_forked_child_does_not_repeat_its_parent_s_ids() -> None:
    new_id()  # the parent has a pool with bytes left
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write_end, new_id().encode())
        os._exit(0)
    os.close(write_end)
    child_id = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    parent_id = new_id()
    assert child_id.replace("-", "")[16:] != parent_id.replace("-", "")[16:]
