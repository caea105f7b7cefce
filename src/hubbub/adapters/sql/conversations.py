"""`ConversationStore` on SQL: creating conversations, listing a user's with their unread
counts and last messages, and the versions the hub's repair compares."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from typing import Any

from sqlalchemy import Row, Select, and_, bindparam, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hubbub.adapters.sql.coalesce import Coalescer
from hubbub.adapters.sql.dialect import Dialect
from hubbub.adapters.sql.schema import conversations, members, messages
from hubbub.adapters.sql.shared import (
    ReadConnection,
    message_select,
    with_reactions,
    write,
)
from hubbub.adapters.sql.unread import UNREAD_COUNT_CAP, mention_count, unread_count
from hubbub.adapters.sql.writer import Writer
from hubbub.domain.inbox import InboxEntry
from hubbub.domain.models import ChannelListing, Conversation, ConversationSummary, Message
from hubbub.domain.permissions import creator_role
from hubbub.protocol.objects import Kind


def direct_key(*user_ids: str) -> str:
    """The key of the one direct conversation of a pair: the SHA-256 of the sorted ids
    joined by a newline, which no user id holds (so two pairs never share a key), in 64
    characters whatever the ids' lengths. Migration 0007 moved the stored keys to it."""
    return hashlib.sha256("\n".join(sorted(set(user_ids))).encode()).hexdigest()


def _to_conversation(row: Row[Any], member_count: int) -> Conversation:
    return Conversation(
        id=row.id, kind=row.kind, name=row.name, created_by=row.created_by,
        created_at=row.created_at, version=row.version, member_count=member_count,
    )


class SqlConversationStore:
    def __init__(self, engine: AsyncEngine, dialect: Dialect, writer: Writer, *,
                 unread_count_cap: int = UNREAD_COUNT_CAP) -> None:
        self._engine = engine
        self._dialect = dialect
        self._writer = writer
        # Built once (as the inbox's entries below): the listing runs for every conversation
        # list and read mark, and building its correlated counts cost more than running it.
        self._listing = _listing(unread_count_cap)
        self._listing_one = self._listing.where(
            conversations.c.id == bindparam("conversation_id"))
        # Read on every user's first connection here: shared by the users arriving
        # together (coalesce.py).
        self._entries: Coalescer[str, list[InboxEntry]] = Coalescer(self._inbox_entries, [])
        self._entries_of = (
            select(members.c.user_id, conversations.c.id, conversations.c.version,
                   members.c.muted, unread_count(unread_count_cap).label("unread_count"),
                   mention_count(unread_count_cap).label("mention_count"))
            .join(members, members.c.conversation_id == conversations.c.id)
            .where(dialect.one_of_bound(members.c.user_id, "user_ids"),
                   members.c.role != "banned")
        )

    async def create_conversation(
        self, conversation_id: str, kind: Kind, name: str | None, created_by: str,
        member_ids: list[str], now: int,
    ) -> tuple[Conversation, bool]:
        key = direct_key(created_by, *member_ids) if kind == "direct" else None

        async def _create_conversation(conn: AsyncConnection) -> tuple[Conversation, bool]:
            if key is not None:
                existing = (await conn.execute(
                    select(conversations).where(conversations.c.direct_key == key)
                )).first()
                if existing is not None:
                    return _to_conversation(existing, 2), False
            await conn.execute(conversations.insert().values(
                id=conversation_id, kind=kind, name=name, created_by=created_by, version=0,
                created_at=now, last_activity_at=now, direct_key=key,
            ))
            # The creator takes part by creating; the others have yet to accept.
            # No creator row for a conversation the backend made without an owner.
            rows = [{"conversation_id": conversation_id, "user_id": created_by,
                     "role": creator_role(kind), "joined_at": now, "accepted_at": now}
                    ] if created_by else []
            rows += [{"conversation_id": conversation_id, "user_id": uid, "role": "member",
                      "joined_at": now, "accepted_at": None}
                     for uid in dict.fromkeys(member_ids) if uid != created_by]
            if rows:
                await conn.execute(members.insert(), rows)
            conversation = Conversation(
                conversation_id, kind, name, created_by, now, 0, len(rows)
            )
            return conversation, True

        return await write(self._writer, _create_conversation)

    async def find_direct(self, user_id: str, other_id: str) -> Conversation | None:
        async with ReadConnection(self._engine) as conn:
            row = (await conn.execute(select(conversations).where(
                conversations.c.direct_key == direct_key(user_id, other_id)
            ))).first()
        return None if row is None else _to_conversation(row, 2)

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        async with ReadConnection(self._engine) as conn:
            row = (await conn.execute(
                select(conversations).where(conversations.c.id == conversation_id)
            )).first()
            if row is None:
                return None
            counts = await _member_counts(conn, [conversation_id])
        return _to_conversation(row, counts.get(conversation_id, 0))

    async def inbox_entries(self, user_id: str) -> list[InboxEntry]:
        return list(await self._entries.get(user_id))

    async def _inbox_entries(self, user_ids: list[str]) -> dict[str, list[InboxEntry]]:
        async with ReadConnection(self._engine) as conn:
            rows = (await conn.execute(self._entries_of, {"user_ids": user_ids})).all()
            counts = await _member_counts(conn, list({row.id for row in rows}))
        found: dict[str, list[InboxEntry]] = {}
        for row in rows:
            found.setdefault(row.user_id, []).append(InboxEntry(
                row.id, int(row.version), counts.get(row.id, 0), int(row.unread_count),
                int(row.mention_count), bool(row.muted)))
        return found

    async def conversation_versions(self, conversation_ids: Collection[str]
                                    ) -> dict[str, int]:
        if not conversation_ids:
            return {}
        query = select(conversations.c.id, conversations.c.version).where(
            self._dialect.one_of(conversations.c.id, list(conversation_ids)))
        async with ReadConnection(self._engine) as conn:
            rows = (await conn.execute(query)).all()
        return {row.id: int(row.version) for row in rows}

    async def list_channels(self, user_id: str, query: str, after: tuple[str, str] | None,
                            limit: int) -> list[ChannelListing]:
        name = self._dialect.code_point_order(conversations.c.name)
        theirs = members.c.conversation_id == conversations.c.id
        mine = and_(theirs, members.c.user_id == user_id)
        listing = (
            select(conversations.c.id, conversations.c.name, conversations.c.created_at,
                   select(func.count()).where(theirs, members.c.role != "banned")
                   .scalar_subquery().label("member_count"),
                   exists().where(mine, members.c.role != "banned").label("is_member"))
            .where(conversations.c.kind == "channel",
                   ~exists().where(mine, members.c.role == "banned"))
            .order_by(name, conversations.c.id)
            .limit(limit)
        )
        if query:
            listing = listing.where(
                self._dialect.contains_insensitive(conversations.c.name, query))
        if after is not None:
            listing = listing.where(or_(name > after[0], and_(
                name == after[0], conversations.c.id > after[1])))
        async with ReadConnection(self._engine) as conn:
            rows = (await conn.execute(listing)).all()
        return [ChannelListing(row.id, row.name, row.created_at, int(row.member_count),
                               bool(row.is_member)) for row in rows]

    async def list_conversations(self, user_id: str, conversation_id: str | None = None
                                 ) -> list[ConversationSummary]:
        query, params = self._listing, {"user_id": user_id}
        if conversation_id is not None:
            query, params = self._listing_one, {**params, "conversation_id": conversation_id}
        async with ReadConnection(self._engine) as conn:
            rows = (await conn.execute(query, params)).all()
            ids = [row.id for row in rows]
            counts = await _member_counts(conn, ids)
            last = await _last_messages(conn, ids)
        return [
            ConversationSummary(
                conversation=_to_conversation(row, counts.get(row.id, 0)),
                role=row.role,
                unread_count=int(row.unread_count),
                last_message=last.get(row.id),
                last_activity=row.last_activity_at,
                mention_count=int(row.mention_count),
                last_read_seq=int(row.last_read_seq),
                muted=bool(row.muted),
                pinned=bool(row.pinned),
            )
            for row in rows
        ]


def _listing(cap: int) -> Select[Any]:
    """A member's conversations with its own counts, for the bound `user_id`."""
    return (
        select(conversations, members.c.role, members.c.last_read_seq,
               members.c.muted, members.c.pinned,
               unread_count(cap).label("unread_count"),
               mention_count(cap).label("mention_count"))
        .join(members, members.c.conversation_id == conversations.c.id)
        .where(members.c.user_id == bindparam("user_id"), members.c.role != "banned")
        # Pinned conversations first (PROTOCOL.md §7), then the most recently active.
        .order_by(members.c.pinned.desc(), conversations.c.last_activity_at.desc(),
                  conversations.c.id)
    )


async def _member_counts(conn: AsyncConnection, ids: list[str]) -> dict[str, int]:
    if not ids:
        return {}
    rows = (await conn.execute(
        select(members.c.conversation_id, func.count())
        .where(members.c.conversation_id.in_(ids), members.c.role != "banned")
        .group_by(members.c.conversation_id)
    )).all()
    return {row[0]: int(row[1]) for row in rows}


async def _last_messages(conn: AsyncConnection, ids: list[str]) -> dict[str, Message]:
    if not ids:
        return {}
    newest = (
        select(messages.c.conversation_id, func.max(messages.c.seq).label("seq"))
        .where(messages.c.conversation_id.in_(ids))
        .group_by(messages.c.conversation_id)
        .subquery()
    )
    rows = (await conn.execute(message_select().join(newest, and_(
        newest.c.conversation_id == messages.c.conversation_id,
        newest.c.seq == messages.c.seq,
    )))).all()
    return {m.conversation_id: m for m in await with_reactions(conn, rows)}
