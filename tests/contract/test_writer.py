"""The group commit (adapters/sql/writer.py) names the writes of a batch that aborted or ran
slow, on SQLite and PostgreSQL alike: the log says what the transaction was doing (the
names of its jobs), never what it wrote."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from hubbub.adapters.sql import writer
from tests.contract.test_send_batch import channel, draft, stored, user
from tests.support.stores import SqlStores

pytestmark = pytest.mark.asyncio(loop_scope="session")


def lines(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "hubbub.writer" and r.getMessage() == event]


async def test_an_aborted_batch_is_reported_by_the_names_of_its_jobs(
        store: SqlStores, caplog: pytest.LogCaptureFixture) -> None:
    """Sends and a plain job that breaks the shared transaction: one warning, naming the
    runner (with its count) and the job by its function, and the error's type only; the
    sends are then stored alone."""
    sender = await user(store)
    room = await channel(store, sender)
    drafts = [draft(room, sender, "secret-client-id"), draft(room, sender)]

    async def _read_a_missing_table(conn: AsyncConnection) -> None:
        await conn.execute(text("SELECT * FROM no_such_table"))

    with caplog.at_level(logging.WARNING, logger="hubbub.writer"):
        outcomes = await asyncio.gather(store.send(drafts[0]), store.send(drafts[1]),
                                        store.writer.run(_read_a_missing_table),
                                        return_exceptions=True)
    assert [stored(o).message.version for o in outcomes[:2]] == [1, 2]
    assert isinstance(outcomes[2], Exception)
    [aborted] = lines(caplog, "writer.batch_aborted")
    assert aborted.jobs == "store_sends×2, read_a_missing_table"  # type: ignore[attr-defined]
    assert aborted.error in {"OperationalError", "ProgrammingError"}  # type: ignore[attr-defined]
    assert "secret" not in repr(vars(aborted))
    assert not lines(caplog, "writer.batch_slow")


async def test_a_slow_batch_is_reported_by_the_names_of_its_jobs(
        store: SqlStores, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch that took at least SLOW_BATCH_S (here: any) is reported once, with its
    time; a quick one is not."""
    sender = await user(store)
    room = await channel(store, sender)
    with caplog.at_level(logging.WARNING, logger="hubbub.writer"):
        await store.send(draft(room, sender))
        assert not lines(caplog, "writer.batch_slow")
        monkeypatch.setattr(writer, "SLOW_BATCH_S", 0.0)
        await asyncio.gather(store.send(draft(room, sender)), store.send(draft(room, sender)))
    [slow] = lines(caplog, "writer.batch_slow")
    assert slow.jobs == "store_sends×2"  # type: ignore[attr-defined]
    assert slow.seconds >= 0  # type: ignore[attr-defined]
    assert not lines(caplog, "writer.batch_aborted")
