"""`MessageStore` on SQL: sends are batched (sends.py); an edit or a delete is one job that
takes the conversation's next version."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hubbub.adapters.sql.coalesce import Coalescer
from hubbub.adapters.sql.dialect import Dialect
from hubbub.adapters.sql.erase import erase_user_content
from hubbub.adapters.sql.schema import conversations, message_edits, messages, reactions
from hubbub.adapters.sql.sends import SendBatch
from hubbub.adapters.sql.shared import (
    DRIVER_ERRORS,
    ReadConnection,
    live_message_row,
    load_messages,
    message_keys,
    message_select,
    next_version,
    recount_thread,
    to_message,
    unavailable,
    with_reactions,
    write,
)
from hubbub.adapters.sql.writer import Writer
from hubbub.domain.errors import NotFound
from hubbub.domain.models import (
    Deletion,
    Erasure,
    Message,
    MessageDraft,
    Page,
    SendOutcome,
    SyncPage,
)

# Built once, with bound parameters: a reconnecting client's sync and every history page
# run these, and building a select of the message columns cost more than running it.


def _history(in_thread: bool, before: bool) -> Any:
    query = message_select().where(messages.c.conversation_id == bindparam("conversation_id"))
    if in_thread:
        query = query.where(messages.c.parent_id == bindparam("parent_id"))
    if before:
        query = query.where(messages.c.seq < bindparam("before"))
    return query.order_by(messages.c.seq.desc()).limit(bindparam("size"))


def _sync(since: bool) -> Any:
    query = message_select().where(messages.c.conversation_id == bindparam("conversation_id"),
                                   messages.c.version > bindparam("after"))
    if since:
        at: Any = bindparam("since")
        query = query.where(or_(
            messages.c.created_at > at, messages.c.edited_at > at, messages.c.deleted_at > at,
            messages.c.reacted_at > at, messages.c.last_reply_at > at))
    return query.order_by(messages.c.version).limit(bindparam("size"))


_HISTORY = {(thread, before): _history(thread, before)
            for thread in (False, True) for before in (False, True)}
_SYNC = {since: _sync(since) for since in (False, True)}
_VERSION = select(conversations.c.version).where(
    conversations.c.id == bindparam("conversation_id"))

# One page of a conversation's changes: (conversation, after version, since, limit).
_SyncKey = tuple[str, int, int | None, int]


class SqlMessageStore:
    def __init__(self, engine: AsyncEngine, dialect: Dialect, writer: Writer) -> None:
        self._engine = engine
        self._writer = writer
        # One object, so that the Writer hands consecutive sends to it together.
        self.send_batch = SendBatch(dialect.send_statements, load_messages)
        # The members of a conversation reconnecting together (after a deploy or a load
        # balancer's failover) ask for the same page: the syncs asked for while one batch
        # is read share the next (coalesce.py), and each distinct page is read once. Every
        # read of a batch starts after all of its requests arrived, so none misses a change
        # that committed before it asked.
        self._syncs: Coalescer[_SyncKey, SyncPage | None] = Coalescer(self._sync_pages, None)

    async def send(self, draft: MessageDraft) -> SendOutcome:
        try:
            return await self._writer.run_batched(self.send_batch, draft,
                                                  (draft.conversation_id,))
        except DRIVER_ERRORS as exc:
            raise unavailable(exc) from exc

    async def edit(self, message_id: str, content: str, now: int) -> Message:
        async def _store_edit(conn: AsyncConnection) -> Message:
            row = await live_message_row(conn, message_id)
            version = await next_version(conn, row.conversation_id, None)
            await conn.execute(message_edits.insert().values(
                message_id=message_id, version=version, previous_content=row.content,
                edited_at=now,
            ))
            await conn.execute(update(messages).where(messages.c.id == message_id).values(
                content=content, edited_at=now, version=version
            ))
            return (await load_messages(conn, [message_id]))[0]

        keys = await message_keys(self._engine, self._writer, message_id)
        return await write(self._writer, _store_edit, keys)

    async def delete(self, message_id: str, deleted_by: str, now: int) -> Deletion:
        async def _soft_delete(conn: AsyncConnection) -> Deletion:
            row = (await conn.execute(message_select().where(messages.c.id == message_id))).first()
            if row is None:
                raise NotFound("unknown message")
            if row.deleted_at is not None:
                return Deletion(to_message(row, {}), False)
            version = await next_version(conn, row.conversation_id, None)
            await conn.execute(update(messages).where(messages.c.id == message_id).values(
                deleted_at=now, deleted_by=deleted_by, version=version
            ))
            await conn.execute(delete(reactions).where(reactions.c.message_id == message_id))
            thread = None
            if row.parent_id is not None:
                thread = await recount_thread(conn, row.conversation_id, row.parent_id)
            return Deletion((await load_messages(conn, [message_id]))[0], True, thread)

        keys = await message_keys(self._engine, self._writer, message_id)
        return await write(self._writer, _soft_delete, keys)

    async def erase_user_content(self, user_id: str, now: int) -> Erasure:
        return await erase_user_content(self._engine, self._writer, user_id, now)

    async def get_message(self, message_id: str) -> Message | None:
        async with ReadConnection(self._engine) as conn:
            found = await load_messages(conn, [message_id])
        return found[0] if found else None

    async def history(self, conversation_id: str, before: int | None, limit: int,
                      parent_id: str | None = None) -> Page:
        query = _HISTORY[parent_id is not None, before is not None]
        params = {"conversation_id": conversation_id, "parent_id": parent_id,
                  "before": before, "size": limit + 1}
        async with ReadConnection(self._engine) as conn:
            rows = (await conn.execute(query, params)).all()
            has_more = len(rows) > limit
            page = await with_reactions(conn, list(reversed(rows[:limit])))
        return Page(page, has_more)

    async def edit_history(self, message_id: str) -> list[tuple[int, str, int]]:
        async with ReadConnection(self._engine) as conn:
            rows = (await conn.execute(
                select(message_edits).where(message_edits.c.message_id == message_id)
                .order_by(message_edits.c.version)
            )).all()
        return [(row.version, row.previous_content, row.edited_at) for row in rows]

    async def sync(self, conversation_id: str, since_version: int | None, since: int | None,
                   limit: int) -> SyncPage:
        page = await self._syncs.get((conversation_id, since_version or 0, since, limit))
        assert page is not None  # every key asked for is read
        return page

    async def _sync_pages(self, keys: list[_SyncKey]) -> dict[_SyncKey, SyncPage | None]:
        pages = await asyncio.gather(*(self._sync_page(*key) for key in keys))
        return dict(zip(keys, pages, strict=True))

    async def _sync_page(self, conversation_id: str, after: int, since: int | None,
                         limit: int) -> SyncPage:
        params = {"conversation_id": conversation_id, "after": after, "since": since,
                  "size": limit + 1}
        current = None
        async with ReadConnection(self._engine) as conn:
            if since is not None:
                # Read first: every version up to it has committed (versions are taken under
                # the conversation row's lock), so an empty page may resume from it.
                current = (await conn.execute(_VERSION, params)).scalar()
            rows = (await conn.execute(_SYNC[since is not None], params)).all()
            page = await with_reactions(conn, rows[:limit])
        if page:
            last_version = page[-1].version
        elif current is not None:
            last_version = max(after, int(current))
        else:
            last_version = after
        return SyncPage(page, len(rows) > limit, last_version)

