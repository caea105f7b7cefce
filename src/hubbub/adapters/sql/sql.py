"""The `Store` on SQLAlchemy Core: one implementation for SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from typing import Any, TypeVar, get_args

import msgspec
from sqlalchemy import (
    Row,
    and_,
    case,
    delete,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hubbub.adapters.sql.dialect import Dialect
from hubbub.adapters.sql.matching import contains_insensitive
from hubbub.adapters.sql.schema import (
    conversations,
    members,
    message_edits,
    messages,
    reactions,
    receipts,
    users,
)
from hubbub.adapters.sql.search_budget import (
    DEFAULT_SEARCH,
    Deadline,
    SearchGate,
    SearchLimits,
    new_deadline,
    run_abortable,
)
from hubbub.adapters.sql.search_scan import scan
from hubbub.adapters.sql.sends import SendBatch
from hubbub.adapters.sql.writer import Writer
from hubbub.domain.errors import Conflict, NotFound
from hubbub.domain.models import (
    Conversation,
    ConversationSummary,
    Member,
    Membership,
    Message,
    MessageDraft,
    Page,
    ReactionChange,
    ReactionSummary,
    ReceiptChange,
    SearchPage,
    SendOutcome,
    SyncPage,
    User,
)
from hubbub.domain.permissions import Ability, can, creator_role
from hubbub.domain.reactions import check_new_reaction
from hubbub.protocol.objects import Attachment, Kind, Role
from hubbub.storage.errors import StoreUnavailable

T = TypeVar("T")
_attachments_encoder = msgspec.json.Encoder()
_attachments_decoder = msgspec.json.Decoder(tuple[Attachment, ...])

_MESSAGE_COLUMNS = (*messages.c, users.c.name.label("sender_name"))
# PROTOCOL.md §5 as data, for queries over many conversations at once: the member roles
# that may read.
_READABLE_ROLES = tuple(role for role in get_args(Role) if can(role, Ability.READ))

# A bound on per-request work (docs/DECISIONS.md, "Conversations"): `unread_count` counts
# at most UNREAD_COUNT_CAP messages (clients show "999+"). Search has its own bounds
# (storage/search_budget.py).
UNREAD_COUNT_CAP = 1000


def _message_select() -> Any:
    return select(*_MESSAGE_COLUMNS).join(users, users.c.id == messages.c.sender_id)


def _to_message(row: Row[Any], reactions_of: dict[str, tuple[ReactionSummary, ...]]) -> Message:
    return Message(
        id=row.id,
        conversation_id=row.conversation_id,
        seq=row.seq,
        version=row.version,
        sender_id=row.sender_id,
        sender_name=row.sender_name,
        content=row.content,
        parent_id=row.parent_id,
        attachments=_attachments_decoder.decode(row.attachments) if row.attachments else (),
        client_message_id=row.client_message_id,
        created_at=row.created_at,
        edited_at=row.edited_at,
        deleted_at=row.deleted_at,
        deleted_by=row.deleted_by,
        reactions=reactions_of.get(row.id, ()),
    )


def _direct_key(*user_ids: str) -> str:
    """The key of the one direct conversation of a pair: "low-uuid:high-uuid"."""
    return ":".join(sorted(set(user_ids)))


def _to_member(row: Row[Any], user_name: str) -> Member:
    return Member(row.conversation_id, row.user_id, user_name, row.role, row.joined_at,
                  row.last_read_seq, row.accepted_at)


def _to_conversation(row: Row[Any], member_count: int) -> Conversation:
    return Conversation(
        id=row.id, kind=row.kind, name=row.name, created_by=row.created_by,
        created_at=row.created_at, version=row.version, member_count=member_count,
    )


class SqlStore:
    """Store on an async SQLAlchemy engine; writes go through one group-committing Writer."""

    def __init__(self, engine: AsyncEngine, dialect: Dialect, *,
                 search_engine: AsyncEngine | None = None,
                 search: SearchLimits = DEFAULT_SEARCH,
                 unread_count_cap: int = UNREAD_COUNT_CAP) -> None:
        self._engine = engine
        self._dialect = dialect
        # Searches have a pool of their own (search_budget.py); without one (tools, tests
        # of other parts) they share the main pool, still through the gate.
        self._search_engine = search_engine or engine
        self._search = search
        self._search_gate = SearchGate(search.concurrency)
        self._unread_count_cap = unread_count_cap
        # PostgreSQL: several instances write at once, so batches lock in one order.
        self._writer = Writer(engine, _lock_conversations if dialect.name == "postgresql"
                              else None)
        # One object, so that the Writer hands consecutive sends to it together.
        self._send_batch = SendBatch(dialect.name, self._load_messages)

    @property
    def writer(self) -> Writer:
        return self._writer

    @property
    def engine(self) -> AsyncEngine:
        """Shared with the other SQL stores of this database (storage/calls.py)."""
        return self._engine

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    @property
    def search_engine(self) -> AsyncEngine:
        return self._search_engine

    async def close(self) -> None:
        await self._writer.close()
        await self._engine.dispose()
        if self._search_engine is not self._engine:
            await self._search_engine.dispose()

    async def ping(self) -> None:
        try:
            async with self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError) as exc:
            raise StoreUnavailable(f"database unavailable: {type(exc).__name__}") from exc

    # -- users ---------------------------------------------------------------------------

    async def upsert_user(self, user_id: str, name: str | None, now: int) -> User:
        async def job(conn: AsyncConnection) -> User:
            row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
            if row is None:
                fallback = name or f"user-{user_id[:8]}"
                statement = self._dialect.insert(users).values(
                    id=user_id, name=fallback, created_at=now, last_seen=now
                ).on_conflict_do_nothing()
                await conn.execute(statement)
                return User(user_id, fallback, now, now)
            if name and name != row.name:
                await conn.execute(update(users).where(users.c.id == user_id).values(name=name))
                return User(user_id, name, row.created_at, row.last_seen)
            return User(user_id, row.name, row.created_at, row.last_seen)

        return await self._write_one_row(job)

    async def touch_user(self, user_id: str, now: int) -> None:
        async def job(conn: AsyncConnection) -> None:
            await conn.execute(update(users).where(users.c.id == user_id).values(last_seen=now))

        await self._write_one_row(job)

    async def get_user(self, user_id: str) -> User | None:
        async with self._read() as conn:
            row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
        return None if row is None else User(row.id, row.name, row.created_at, row.last_seen)

    # -- conversations and members -------------------------------------------------------

    async def create_conversation(
        self, conversation_id: str, kind: Kind, name: str | None, created_by: str,
        member_ids: list[str], now: int,
    ) -> tuple[Conversation, bool]:
        direct_key = _direct_key(created_by, *member_ids) if kind == "direct" else None

        async def job(conn: AsyncConnection) -> tuple[Conversation, bool]:
            if direct_key is not None:
                existing = (await conn.execute(
                    select(conversations).where(conversations.c.direct_key == direct_key)
                )).first()
                if existing is not None:
                    return _to_conversation(existing, 2), False
            await conn.execute(conversations.insert().values(
                id=conversation_id, kind=kind, name=name, created_by=created_by, version=0,
                created_at=now, last_activity_at=now, direct_key=direct_key,
            ))
            # The creator takes part by creating; the others have yet to accept.
            rows = [{"conversation_id": conversation_id, "user_id": created_by,
                     "role": creator_role(kind), "joined_at": now, "accepted_at": now}]
            rows += [{"conversation_id": conversation_id, "user_id": uid, "role": "member",
                      "joined_at": now, "accepted_at": None}
                     for uid in dict.fromkeys(member_ids) if uid != created_by]
            await conn.execute(members.insert(), rows)
            conversation = Conversation(
                conversation_id, kind, name, created_by, now, 0, len(rows)
            )
            return conversation, True

        return await self._write(job)

    async def find_direct(self, user_id: str, other_id: str) -> Conversation | None:
        async with self._read() as conn:
            row = (await conn.execute(select(conversations).where(
                conversations.c.direct_key == _direct_key(user_id, other_id)
            ))).first()
        return None if row is None else _to_conversation(row, 2)

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        async with self._read() as conn:
            row = (await conn.execute(
                select(conversations).where(conversations.c.id == conversation_id)
            )).first()
            if row is None:
                return None
            count = await self._member_count(conn, conversation_id)
        return _to_conversation(row, count)

    async def conversation_versions(self, conversation_ids: Collection[str]
                                    ) -> dict[str, int]:
        if not conversation_ids:
            return {}
        query = select(conversations.c.id, conversations.c.version).where(
            self._dialect.one_of(conversations.c.id, list(conversation_ids)))
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return {row.id: int(row.version) for row in rows}

    async def list_conversations(self, user_id: str, conversation_id: str | None = None
                                 ) -> list[ConversationSummary]:
        query = (
            select(conversations, members.c.role, members.c.last_read_seq,
                   self._unread_count(user_id).label("unread_count"))
            .join(members, members.c.conversation_id == conversations.c.id)
            .where(members.c.user_id == user_id, members.c.role != "banned")
            .order_by(conversations.c.last_activity_at.desc(), conversations.c.id)
        )
        if conversation_id is not None:
            query = query.where(conversations.c.id == conversation_id)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
            ids = [row.id for row in rows]
            counts = await self._member_counts(conn, ids)
            last = await self._last_messages(conn, ids)
        return [
            ConversationSummary(
                conversation=_to_conversation(row, counts.get(row.id, 0)),
                role=row.role,
                unread_count=int(row.unread_count),
                last_message=last.get(row.id),
                last_activity=row.last_activity_at,
            )
            for row in rows
        ]

    async def accepted_conversation_ids(self, user_id: str) -> list[str]:
        async with self._read() as conn:
            rows = (await conn.execute(
                select(members.c.conversation_id)
                .where(members.c.user_id == user_id, members.c.role != "banned",
                       members.c.accepted_at.is_not(None))
            )).all()
        return [row[0] for row in rows]

    async def get_membership(self, conversation_id: str, user_id: str) -> Membership | None:
        async with self._read() as conn:
            row = (await conn.execute(
                select(members.c.role, members.c.accepted_at).where(
                    members.c.conversation_id == conversation_id, members.c.user_id == user_id
                )
            )).first()
        return None if row is None else Membership(row.role, row.accepted_at is not None)

    async def list_members(self, conversation_id: str) -> list[Member]:
        async with self._read() as conn:
            rows = (await conn.execute(
                select(members, users.c.name)
                .join(users, users.c.id == members.c.user_id)
                .where(members.c.conversation_id == conversation_id)
                .order_by(members.c.joined_at, members.c.user_id)
            )).all()
        return [_to_member(row, row.name) for row in rows]

    async def put_member(
        self, conversation_id: str, user_id: str, role: Role, now: int
    ) -> tuple[Member, bool]:
        async def job(conn: AsyncConnection) -> tuple[Member, bool]:
            user = (await conn.execute(select(users.c.name).where(users.c.id == user_id))).first()
            if user is None:
                raise NotFound("unknown user")
            await self._lock_conversation(conn, conversation_id)
            row = (await conn.execute(select(members).where(
                members.c.conversation_id == conversation_id, members.c.user_id == user_id
            ))).first()
            if row is None:
                # Added by someone else: not accepted until the user takes part.
                await conn.execute(members.insert().values(
                    conversation_id=conversation_id, user_id=user_id, role=role, joined_at=now
                ))
                return Member(conversation_id, user_id, user.name, role, now), True
            if row.role == "owner" and role != "owner":
                await _keep_an_owner(conn, conversation_id, user_id)
            await conn.execute(update(members).where(
                members.c.conversation_id == conversation_id, members.c.user_id == user_id
            ).values(role=role))
            return msgspec.structs.replace(_to_member(row, user.name), role=role), False

        return await self._write(job, (conversation_id,))

    async def add_member_if_absent(
        self, conversation_id: str, user_id: str, role: Role, now: int
    ) -> tuple[Member, bool]:
        async def job(conn: AsyncConnection) -> tuple[Member, bool]:
            user = (await conn.execute(select(users.c.name).where(users.c.id == user_id))).first()
            if user is None:
                raise NotFound("unknown user")
            await self._lock_conversation(conn, conversation_id)
            # Never an update: a role set concurrently (a ban above all) must stay as it is.
            # The user joins by themselves, so a new membership is accepted at once.
            inserted = await conn.execute(self._dialect.insert(members).values(
                conversation_id=conversation_id, user_id=user_id, role=role, joined_at=now,
                accepted_at=now,
            ).on_conflict_do_nothing())
            if inserted.rowcount:
                return Member(conversation_id, user_id, user.name, role, now, 0, now), True
            row = (await conn.execute(select(members).where(
                members.c.conversation_id == conversation_id, members.c.user_id == user_id
            ))).first()
            if row is None:
                # Removed between the two statements (PostgreSQL, read committed): rare.
                raise Conflict("the membership changed meanwhile; retry")
            return _to_member(row, user.name), False

        return await self._write(job, (conversation_id,))

    async def accept_membership(self, conversation_id: str, user_id: str, now: int) -> bool:
        async def job(conn: AsyncConnection) -> bool:
            await self._lock_conversation(conn, conversation_id)
            result = await conn.execute(update(members).where(
                members.c.conversation_id == conversation_id, members.c.user_id == user_id,
                members.c.accepted_at.is_(None),
            ).values(accepted_at=now))
            return bool(result.rowcount)

        return await self._write(job, (conversation_id,))

    async def remove_member(self, conversation_id: str, user_id: str) -> bool:
        async def job(conn: AsyncConnection) -> bool:
            await self._lock_conversation(conn, conversation_id)
            role = (await conn.execute(select(members.c.role).where(
                members.c.conversation_id == conversation_id, members.c.user_id == user_id
            ))).scalar()
            if role is None:
                return False
            if role == "owner":
                await _keep_an_owner(conn, conversation_id, user_id)
            await conn.execute(delete(members).where(
                members.c.conversation_id == conversation_id, members.c.user_id == user_id
            ))
            return True

        return await self._write(job, (conversation_id,))

    # -- messages ------------------------------------------------------------------------

    async def send(self, draft: MessageDraft) -> SendOutcome:
        # Batched with the sends queued next to it: storage/sends.py.
        try:
            return await self._writer.run_batched(self._send_batch, draft,
                                                  (draft.conversation_id,))
        except (SQLAlchemyError, OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"database error: {type(exc).__name__}") from exc

    async def edit(self, message_id: str, content: str, now: int) -> Message:
        async def job(conn: AsyncConnection) -> Message:
            row = await self._live_message_row(conn, message_id)
            version = await self._next_version(conn, row.conversation_id, None)
            await conn.execute(message_edits.insert().values(
                message_id=message_id, version=version, previous_content=row.content,
                edited_at=now,
            ))
            await conn.execute(update(messages).where(messages.c.id == message_id).values(
                content=content, edited_at=now, version=version
            ))
            return (await self._load_messages(conn, [message_id]))[0]

        return await self._write(job, await self._message_keys(message_id))

    async def delete(self, message_id: str, deleted_by: str, now: int) -> tuple[Message, bool]:
        async def job(conn: AsyncConnection) -> tuple[Message, bool]:
            row = (await conn.execute(_message_select().where(messages.c.id == message_id))).first()
            if row is None:
                raise NotFound("unknown message")
            if row.deleted_at is not None:
                return _to_message(row, {}), False
            version = await self._next_version(conn, row.conversation_id, None)
            await conn.execute(update(messages).where(messages.c.id == message_id).values(
                deleted_at=now, deleted_by=deleted_by, version=version
            ))
            await conn.execute(delete(reactions).where(reactions.c.message_id == message_id))
            return (await self._load_messages(conn, [message_id]))[0], True

        return await self._write(job, await self._message_keys(message_id))

    async def get_message(self, message_id: str) -> Message | None:
        async with self._read() as conn:
            found = await self._load_messages(conn, [message_id])
        return found[0] if found else None

    async def history(self, conversation_id: str, before: int | None, limit: int) -> Page:
        query = _message_select().where(messages.c.conversation_id == conversation_id)
        if before is not None:
            query = query.where(messages.c.seq < before)
        query = query.order_by(messages.c.seq.desc()).limit(limit + 1)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
            has_more = len(rows) > limit
            page = await self._with_reactions(conn, list(reversed(rows[:limit])))
        return Page(page, has_more)

    async def edit_history(self, message_id: str) -> list[tuple[int, str, int]]:
        async with self._read() as conn:
            rows = (await conn.execute(
                select(message_edits).where(message_edits.c.message_id == message_id)
                .order_by(message_edits.c.version)
            )).all()
        return [(row.version, row.previous_content, row.edited_at) for row in rows]

    # -- search, sync, reactions, receipts (PROTOCOL.md §3) -----------------------------

    async def search(self, user_id: str, query: str, conversation_id: str | None,
                     limit: int) -> SearchPage:
        # The slot is held until the work below has let go of its connection, even when
        # the caller is cancelled (run_abortable waits for it); its time starts now.
        async with self._search_gate.slot(user_id):
            deadline = new_deadline(self._dialect.name, self._search.timeout_s)
            return await run_abortable(
                self._search_within(deadline, query, conversation_id, user_id, limit),
                deadline)

    async def _search_within(self, deadline: Deadline, query: str,
                             conversation_id: str | None, user_id: str,
                             limit: int) -> SearchPage:
        """The search on a connection of the search pool, once it has its slot."""
        async with _Guarded(self._search_engine) as conn:
            # The scope first, outside the deadline: one indexed read of the memberships.
            scope, left_out = ([conversation_id], None) if conversation_id is not None \
                else await self._search_scope(conn, user_id)
            await deadline.attach(conn)
            try:
                match = contains_insensitive(self._dialect.name, messages.c.content, query)
                found = await scan(conn, self._dialect.name, scope, match, limit,
                                   self._search.scan_limit, deadline)
                deadline.relax()
                await conn.rollback()  # ends a transaction a timeout may have aborted
                loaded = await self._live_messages(conn, found.ids) if found.ids else {}
            finally:
                await deadline.detach()
        page = [loaded[i] for i in found.ids if i in loaded]
        truncated = not found.complete
        if left_out is not None:
            # Conversations beyond the cap may hold newer matches than the oldest one here.
            truncated = truncated or len(found.ids) < limit or (
                bool(page) and page[-1].created_at < left_out)
        return SearchPage(page, truncated)

    async def _live_messages(self, conn: AsyncConnection,
                             ids: list[str]) -> dict[str, Message]:
        """The messages found, unless deleted since the scan saw them."""
        rows = (await conn.execute(_message_select().where(
            messages.c.id.in_(ids), messages.c.deleted_at.is_(None)))).all()
        return {m.id: m for m in await self._with_reactions(conn, rows)}

    async def _search_scope(self, conn: AsyncConnection,
                            user_id: str) -> tuple[list[str], int | None]:
        """The conversations a search without `conversation_id` covers: the user's readable
        memberships, the most recently active first, at most the cap; and the last activity
        of the newest one left out (None: none was)."""
        cap = self._search.conversations
        rows = (await conn.execute(
            select(conversations.c.id, conversations.c.last_activity_at)
            .join(members, members.c.conversation_id == conversations.c.id)
            .where(members.c.user_id == user_id, members.c.role.in_(_READABLE_ROLES))
            .order_by(conversations.c.last_activity_at.desc(), conversations.c.id)
            .limit(cap + 1)
        )).all()
        left_out = int(rows[cap].last_activity_at) if len(rows) > cap else None
        return [row.id for row in rows[:cap]], left_out

    async def sync(self, conversation_id: str, since_version: int | None, since: int | None,
                   limit: int) -> SyncPage:
        after = since_version or 0
        statement = _message_select().where(messages.c.conversation_id == conversation_id,
                                            messages.c.version > after)
        if since is not None:
            statement = statement.where(or_(
                messages.c.created_at > since, messages.c.edited_at > since,
                messages.c.deleted_at > since, messages.c.reacted_at > since,
            ))
        statement = statement.order_by(messages.c.version).limit(limit + 1)
        current = None
        async with self._read() as conn:
            if since is not None:
                # Read first: every version up to it has committed (versions are taken under
                # the conversation row's lock), so an empty page may resume from it.
                current = (await conn.execute(select(conversations.c.version).where(
                    conversations.c.id == conversation_id
                ))).scalar()
            rows = (await conn.execute(statement)).all()
            page = await self._with_reactions(conn, rows[:limit])
        if page:
            last_version = page[-1].version
        elif current is not None:
            last_version = max(after, int(current))
        else:
            last_version = after
        return SyncPage(page, len(rows) > limit, last_version)

    async def add_reaction(self, message_id: str, user_id: str, emoji: str,
                           now: int) -> ReactionChange:
        async def job(conn: AsyncConnection) -> ReactionChange:
            row = await self._live_message_row(conn, message_id)
            # Counted under the conversation's lock, so concurrent adds (other instances
            # included) see each other and never pass the caps together.
            await self._lock_conversation(conn, row.conversation_id)
            counts = (await conn.execute(_reaction_counts(message_id, user_id, emoji))).one()
            if counts.already:
                return ReactionChange(row.conversation_id, message_id, row.version, False)
            check_new_reaction(int(counts.distinct_emoji), bool(counts.with_emoji),
                               int(counts.by_user))
            version = await self._next_version(conn, row.conversation_id, None)
            await conn.execute(reactions.insert().values(
                message_id=message_id, user_id=user_id, emoji=emoji, created_at=now
            ))
            await conn.execute(update(messages).where(messages.c.id == message_id).values(
                version=version, reacted_at=now
            ))
            return ReactionChange(row.conversation_id, message_id, version, True)

        return await self._write(job, await self._message_keys(message_id))

    async def remove_reaction(self, message_id: str, user_id: str, emoji: str,
                              now: int) -> ReactionChange:
        async def job(conn: AsyncConnection) -> ReactionChange:
            row = await self._live_message_row(conn, message_id)
            if not await self._has_reaction(conn, message_id, user_id, emoji):
                return ReactionChange(row.conversation_id, message_id, row.version, False)
            version = await self._next_version(conn, row.conversation_id, None)
            await conn.execute(delete(reactions).where(
                reactions.c.message_id == message_id, reactions.c.user_id == user_id,
                reactions.c.emoji == emoji,
            ))
            await conn.execute(update(messages).where(messages.c.id == message_id).values(
                version=version, reacted_at=now
            ))
            return ReactionChange(row.conversation_id, message_id, version, True)

        return await self._write(job, await self._message_keys(message_id))

    async def mark_read(self, conversation_id: str, user_id: str, message_id: str,
                        now: int) -> ReceiptChange:
        async def job(conn: AsyncConnection) -> ReceiptChange:
            seq = await self._seq_in(conn, conversation_id, message_id)
            await self._lock_conversation(conn, conversation_id)
            # Monotonic: the condition on last_read_seq makes an older mark change nothing.
            result = await conn.execute(update(members).where(
                members.c.conversation_id == conversation_id, members.c.user_id == user_id,
                members.c.last_read_seq < seq,
            ).values(last_read_seq=seq, last_read_at=now))
            return ReceiptChange(conversation_id, message_id, now, bool(result.rowcount))

        return await self._write(job, (conversation_id,))

    async def mark_delivered(self, conversation_id: str, user_id: str, message_id: str,
                             now: int) -> ReceiptChange:
        async def job(conn: AsyncConnection) -> ReceiptChange:
            await self._seq_in(conn, conversation_id, message_id)
            await self._lock_conversation(conn, conversation_id)
            member = (await conn.execute(select(members.c.role).where(
                members.c.conversation_id == conversation_id, members.c.user_id == user_id
            ))).first()
            if member is None:
                return ReceiptChange(conversation_id, message_id, now, False)
            inserted = await conn.execute(self._dialect.insert(receipts).values(
                message_id=message_id, user_id=user_id, conversation_id=conversation_id,
                delivered_at=now,
            ).on_conflict_do_nothing())
            if inserted.rowcount:
                return ReceiptChange(conversation_id, message_id, now, True)
            # A row made by a read receipt may not have a delivery time yet.
            updated = await conn.execute(update(receipts).where(
                receipts.c.message_id == message_id, receipts.c.user_id == user_id,
                receipts.c.delivered_at.is_(None),
            ).values(delivered_at=now))
            return ReceiptChange(conversation_id, message_id, now, bool(updated.rowcount))

        return await self._write(job, (conversation_id,))

    async def _has_reaction(self, conn: AsyncConnection, message_id: str, user_id: str,
                            emoji: str) -> bool:
        found = (await conn.execute(select(reactions.c.message_id).where(
            reactions.c.message_id == message_id, reactions.c.user_id == user_id,
            reactions.c.emoji == emoji,
        ))).first()
        return found is not None

    async def _seq_in(self, conn: AsyncConnection, conversation_id: str,
                      message_id: str) -> int:
        """The message's seq, checking that it belongs to the conversation."""
        seq = (await conn.execute(select(messages.c.seq).where(
            messages.c.id == message_id, messages.c.conversation_id == conversation_id
        ))).scalar()
        if seq is None:
            raise NotFound("unknown message in this conversation - at `$.message_id`")
        return int(seq)

    # -- helpers -------------------------------------------------------------------------

    def _read(self) -> Any:
        return _Guarded(self._engine)

    async def _write(self, job: Callable[[AsyncConnection], Awaitable[T]],
                     keys: tuple[str, ...] = ()) -> T:
        try:
            return await self._writer.run(job, keys)
        except (SQLAlchemyError, OSError) as exc:
            raise StoreUnavailable(f"database error: {type(exc).__name__}") from exc

    async def _write_one_row(self, job: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """A write of one row that belongs to no conversation (a user's): apart from the
        batches where that matters (Writer.run_apart)."""
        try:
            return await self._writer.run_apart(job)
        except (SQLAlchemyError, OSError) as exc:
            raise StoreUnavailable(f"database error: {type(exc).__name__}") from exc

    async def _lock_conversation(self, conn: AsyncConnection, conversation_id: str) -> None:
        """Lock the conversation's row before writing rows of it that do not bump it
        (memberships, receipts), when the Writer orders locks (writer.py): every job then
        locks a conversation before its rows, so no two batches wait on each other's."""
        if self._writer.orders_locks:
            await _lock_conversations(conn, [conversation_id])

    async def _message_keys(self, message_id: str) -> tuple[str, ...]:
        """The conversation whose row a change of this message locks, when the Writer
        orders locks (writer.py). A message never moves, so reading it first is safe."""
        if not self._writer.orders_locks:
            return ()
        async with self._read() as conn:
            found = (await conn.execute(
                select(messages.c.conversation_id).where(messages.c.id == message_id)
            )).scalar()
        return () if found is None else (str(found),)

    async def _next_version(self, conn: AsyncConnection, conversation_id: str,
                            activity_at: int | None) -> int:
        """Take the conversation's next version: the one counter of PROTOCOL.md §2."""
        values: dict[str, Any] = {"version": conversations.c.version + 1}
        if activity_at is not None:
            values["last_activity_at"] = activity_at
        version = (await conn.execute(
            update(conversations).where(conversations.c.id == conversation_id)
            .values(**values).returning(conversations.c.version)
        )).scalar()
        if version is None:
            raise NotFound("unknown conversation")
        return int(version)

    async def _live_message_row(self, conn: AsyncConnection, message_id: str) -> Row[Any]:
        row = (await conn.execute(select(messages).where(messages.c.id == message_id))).first()
        if row is None:
            raise NotFound("unknown message")
        if row.deleted_at is not None:
            raise Conflict("the message is deleted")
        return row

    async def _load_messages(self, conn: AsyncConnection, ids: Sequence[str]) -> list[Message]:
        rows = (await conn.execute(_message_select().where(messages.c.id.in_(ids)))).all()
        return await self._with_reactions(conn, rows)

    async def _with_reactions(self, conn: AsyncConnection,
                              rows: Sequence[Row[Any]]) -> list[Message]:
        live = [row.id for row in rows if row.deleted_at is None]
        reactions_of = await self._reactions(conn, live) if live else {}
        return [_to_message(row, reactions_of) for row in rows]

    async def _reactions(self, conn: AsyncConnection,
                         message_ids: Iterable[str]) -> dict[str, tuple[ReactionSummary, ...]]:
        rows = (await conn.execute(
            select(reactions.c.message_id, reactions.c.emoji, reactions.c.user_id)
            .where(reactions.c.message_id.in_(list(message_ids)))
            .order_by(reactions.c.created_at, reactions.c.user_id)
        )).all()
        grouped: dict[str, dict[str, list[str]]] = {}
        for row in rows:
            grouped.setdefault(row.message_id, {}).setdefault(row.emoji, []).append(row.user_id)
        return {
            message_id: tuple(ReactionSummary(emoji, tuple(uids)) for emoji, uids in by.items())
            for message_id, by in grouped.items()
        }

    async def _member_count(self, conn: AsyncConnection, conversation_id: str) -> int:
        return (await self._member_counts(conn, [conversation_id])).get(conversation_id, 0)

    async def _member_counts(self, conn: AsyncConnection, ids: list[str]) -> dict[str, int]:
        if not ids:
            return {}
        rows = (await conn.execute(
            select(members.c.conversation_id, func.count())
            .where(members.c.conversation_id.in_(ids), members.c.role != "banned")
            .group_by(members.c.conversation_id)
        )).all()
        return {row[0]: int(row[1]) for row in rows}

    def _unread_count(self, user_id: str) -> Any:
        """Other users' live messages after the member's read mark, counted up to the cap:
        the LIMIT inside stops the index range scan there, so a member who never reads a
        busy channel costs at most the cap per listing, not the channel's whole history."""
        unread = (
            select(literal_column("1")).select_from(messages)
            .where(messages.c.conversation_id == conversations.c.id,
                   messages.c.seq > members.c.last_read_seq,
                   messages.c.sender_id != user_id,
                   messages.c.deleted_at.is_(None))
            .correlate(conversations, members)
            .limit(self._unread_count_cap)
            .subquery()
        )
        return select(func.count()).select_from(unread).scalar_subquery()

    async def _last_messages(self, conn: AsyncConnection, ids: list[str]) -> dict[str, Message]:
        if not ids:
            return {}
        newest = (
            select(messages.c.conversation_id, func.max(messages.c.seq).label("seq"))
            .where(messages.c.conversation_id.in_(ids))
            .group_by(messages.c.conversation_id)
            .subquery()
        )
        rows = (await conn.execute(_message_select().join(newest, and_(
            newest.c.conversation_id == messages.c.conversation_id,
            newest.c.seq == messages.c.seq,
        )))).all()
        return {m.conversation_id: m for m in await self._with_reactions(conn, rows)}


def _count_where(condition: Any) -> Any:
    """How many rows of a group match `condition` (0 for none)."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _reaction_counts(message_id: str, user_id: str, emoji: str) -> Any:
    """One pass over the message's reactions (its primary-key range): how many different
    emoji it has, how many of them are `emoji`, how many are the user's, and whether the
    user's `emoji` is there already."""
    mine = reactions.c.user_id == user_id
    same = reactions.c.emoji == emoji
    return select(
        func.count(reactions.c.emoji.distinct()).label("distinct_emoji"),
        _count_where(same).label("with_emoji"),
        _count_where(mine).label("by_user"),
        _count_where(and_(mine, same)).label("already"),
    ).where(reactions.c.message_id == message_id)


async def _keep_an_owner(conn: AsyncConnection, conversation_id: str, owner_id: str) -> None:
    """Refuse to remove or demote the last owner while other (non-banned) members remain:
    only owners make admins and owners, so the conversation could never be fully managed
    again. Call under the conversation's row lock (PostgreSQL; SQLite has one writer), so
    that concurrent step-downs and leaves are decided one after another.

    Raises:
        Conflict: `owner_id` is the only owner and other members remain.
    """
    others, owners = (await conn.execute(
        select(func.count(), _count_where(members.c.role == "owner"))
        .where(members.c.conversation_id == conversation_id, members.c.user_id != owner_id,
               members.c.role != "banned")
    )).one()
    if int(others) > 0 and int(owners) == 0:
        raise Conflict("the last owner cannot leave or step down while others remain; "
                       "make another member owner first")


async def _lock_conversations(conn: AsyncConnection, ids: list[str]) -> None:
    """Lock these conversations' rows in the order given (LockRows runs above the sort)."""
    await conn.execute(
        select(conversations.c.id).where(conversations.c.id.in_(ids))
        .order_by(conversations.c.id).with_for_update()
    )


class _Guarded:
    """A read connection whose driver errors surface as StoreUnavailable."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._context = engine.connect()

    async def __aenter__(self) -> AsyncConnection:
        try:
            return await self._context.__aenter__()
        except (SQLAlchemyError, OSError) as exc:
            raise StoreUnavailable(f"database unavailable: {type(exc).__name__}") from exc

    async def __aexit__(self, *exc_info: Any) -> bool:
        await self._context.__aexit__(*exc_info)
        if exc_info[1] is not None and isinstance(exc_info[1], SQLAlchemyError | OSError):
            raise StoreUnavailable(f"database error: {type(exc_info[1]).__name__}") from exc_info[1]
        return False
