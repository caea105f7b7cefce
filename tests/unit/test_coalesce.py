"""The Coalescer (adapters/sql/coalesce.py) on its own: who shares a read, what each gets,
and what a failed or cancelled read leaves behind."""

from __future__ import annotations

import asyncio

import pytest

from hubbub.adapters.sql.coalesce import MAX_BATCH, Coalescer


class Reads:
    """A fetch that records each batch it is asked for and can be made to fail once."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.fail_with: Exception | None = None
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, keys: list[int]) -> dict[int, str]:
        self.batches.append(list(keys))
        await self.gate.wait()
        if self.fail_with is not None:
            error, self.fail_with = self.fail_with, None  # fails one read
            raise error
        return {key: f"value {key}" for key in keys if key % 10}


async def test_keys_asked_for_during_a_read_share_the_next_one() -> None:
    reads = Reads()
    reads.gate.clear()
    coalescer = Coalescer(reads, "missing")
    first = asyncio.ensure_future(coalescer.get(1))
    await asyncio.sleep(0)  # the first read has started, and waits
    others = [asyncio.ensure_future(coalescer.get(k)) for k in (2, 3, 10, 2)]
    await asyncio.sleep(0)
    reads.gate.set()
    assert await first == "value 1"
    assert await asyncio.gather(*others) == ["value 2", "value 3", "missing", "value 2"]
    assert reads.batches == [[1], [2, 3, 10]]


async def test_a_batch_is_bounded() -> None:
    reads = Reads()
    coalescer = Coalescer(reads, "missing")
    keys = list(range(1, MAX_BATCH * 2 + 2))
    found = await asyncio.gather(*(coalescer.get(k) for k in keys))
    assert found == [f"value {k}" if k % 10 else "missing" for k in keys]
    assert max(len(batch) for batch in reads.batches) == MAX_BATCH
    assert sorted(k for batch in reads.batches for k in batch) == keys


async def test_a_failed_read_fails_its_batch_and_the_next_one_runs() -> None:
    reads = Reads()
    reads.gate.clear()
    reads.fail_with = OSError("database gone")
    coalescer = Coalescer(reads, "missing")
    failing = [asyncio.ensure_future(coalescer.get(k)) for k in (1, 2)]
    await asyncio.sleep(0)
    later = asyncio.ensure_future(coalescer.get(3))
    await asyncio.sleep(0)
    reads.gate.set()
    for future in failing:
        with pytest.raises(OSError, match="database gone"):
            await future
    assert await later == "value 3"
    assert await coalescer.get(4) == "value 4"  # and the coalescer still works


async def test_a_caller_that_gives_up_leaves_the_others_their_answer() -> None:
    reads = Reads()
    reads.gate.clear()
    coalescer = Coalescer(reads, "missing")
    gone = asyncio.ensure_future(coalescer.get(1))
    staying = asyncio.ensure_future(coalescer.get(1))
    await asyncio.sleep(0)
    gone.cancel()
    reads.gate.set()
    assert await staying == "value 1"
    assert gone.cancelled()


async def test_cancelling_the_read_cancels_every_waiter() -> None:
    reads = Reads()
    reads.gate.clear()
    coalescer = Coalescer(reads, "missing")
    reading = asyncio.ensure_future(coalescer.get(1))
    await asyncio.sleep(0)
    queued = asyncio.ensure_future(coalescer.get(2))
    await asyncio.sleep(0)
    task = coalescer._reading
    assert task is not None
    task.cancel()
    await asyncio.gather(reading, queued, return_exceptions=True)
    assert reading.cancelled()
    assert queued.cancelled()
    reads.gate.set()
    assert await coalescer.get(5) == "value 5"  # a new read starts for the next caller
