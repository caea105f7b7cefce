"""`MemberStore` on SQL. Every write locks the conversation's row first (shared.py
`lock_conversation`), so the last-owner rule is decided one change after another."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import Row, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hubbub.adapters.sql.coalesce import Coalescer
from hubbub.adapters.sql.dialect import Dialect
from hubbub.adapters.sql.schema import conversations, members, users
from hubbub.adapters.sql.shared import ReadConnection, count_where, lock_conversation, write
from hubbub.adapters.sql.unread import UNREAD_COUNT_CAP, mention_count, unread_count
from hubbub.adapters.sql.writer import Writer
from hubbub.domain.errors import Conflict, NotFound
from hubbub.domain.models import Member, Membership, UnreadCounts
from hubbub.protocol.objects import Role


def _to_member(row: Row[Any], user_name: str) -> Member:
    return Member(row.conversation_id, row.user_id, user_name, row.role, row.joined_at,
                  row.last_read_seq, row.accepted_at, bool(row.muted), bool(row.pinned))


class SqlMemberStore:
    def __init__(self, engine: AsyncEngine, dialect: Dialect, writer: Writer, *,
                 unread_count_cap: int = UNREAD_COUNT_CAP) -> None:
        self._engine = engine
        self._dialect = dialect
        self._writer = writer
        # Built once (for bound parameters): these run for every message (the counts, for
        # the inbox) and every user's first connection (the accepted ids, for presence),
        # and building them cost more than running them.
        self._unread_counts = select(
            members.c.user_id, members.c.last_read_seq,
            unread_count(unread_count_cap).label("unread"),
            mention_count(unread_count_cap).label("mentions")).where(
            members.c.conversation_id == bindparam("conversation_id"),
            members.c.role != "banned")
        # Read for every user's first connection (presence): shared by the users arriving
        # together (coalesce.py).
        self._accepted: Coalescer[str, list[str]] = Coalescer(self._accepted_ids, [])
        self._accepted_of = select(members.c.user_id, members.c.conversation_id).where(
            dialect.one_of_bound(members.c.user_id, "user_ids"), members.c.role != "banned",
            members.c.accepted_at.is_not(None))

    async def get_membership(self, conversation_id: str, user_id: str) -> Membership | None:
        async with ReadConnection(self._engine) as conn:
            row = (await conn.execute(
                select(members.c.role, members.c.accepted_at).where(
                    members.c.conversation_id == conversation_id, members.c.user_id == user_id
                )
            )).first()
        return None if row is None else Membership(row.role, row.accepted_at is not None)

    async def list_members(self, conversation_id: str) -> list[Member]:
        async with ReadConnection(self._engine) as conn:
            rows = (await conn.execute(
                select(members, users.c.name)
                .join(users, users.c.id == members.c.user_id)
                .where(members.c.conversation_id == conversation_id)
                .order_by(members.c.joined_at, members.c.user_id)
            )).all()
        return [_to_member(row, row.name) for row in rows]

    async def unread_counts(self, conversation_id: str) -> dict[str, UnreadCounts]:
        async with ReadConnection(self._engine) as conn:
            rows = (await conn.execute(self._unread_counts,
                                       {"conversation_id": conversation_id})).all()
        return {row.user_id: UnreadCounts(int(row.unread), int(row.mentions),
                                          int(row.last_read_seq)) for row in rows}

    async def accepted_conversation_ids(self, user_id: str) -> list[str]:
        return list(await self._accepted.get(user_id))

    async def _accepted_ids(self, user_ids: list[str]) -> dict[str, list[str]]:
        async with ReadConnection(self._engine) as conn:
            rows = (await conn.execute(self._accepted_of, {"user_ids": user_ids})).all()
        found: dict[str, list[str]] = {}
        for user_id, conversation_id in rows:
            found.setdefault(user_id, []).append(conversation_id)
        return found

    async def put_member(
        self, conversation_id: str, user_id: str, role: Role, now: int
    ) -> tuple[Member, bool]:
        async def _put_member(conn: AsyncConnection) -> tuple[Member, bool]:
            user_name = await _user_name(conn, user_id)
            await lock_conversation(self._writer, conn, conversation_id)
            row = (await conn.execute(select(members).where(
                members.c.conversation_id == conversation_id, members.c.user_id == user_id
            ))).first()
            if row is None:
                # Added by someone else: not accepted until the user takes part.
                await conn.execute(members.insert().values(
                    conversation_id=conversation_id, user_id=user_id, role=role, joined_at=now
                ))
                return Member(conversation_id, user_id, user_name, role, now), True
            if row.role == "owner" and role != "owner":
                await _keep_an_owner(conn, conversation_id, user_id)
            await conn.execute(update(members).where(
                members.c.conversation_id == conversation_id, members.c.user_id == user_id
            ).values(role=role))
            return msgspec.structs.replace(_to_member(row, user_name), role=role), False

        return await write(self._writer, _put_member, (conversation_id,))

    async def add_member_if_absent(
        self, conversation_id: str, user_id: str, role: Role, now: int
    ) -> tuple[Member, bool]:
        async def _add_member_unless_present(conn: AsyncConnection) -> tuple[Member, bool]:
            user_name = await _user_name(conn, user_id)
            await lock_conversation(self._writer, conn, conversation_id)
            # Never an update: a role set concurrently (a ban above all) must stay as it is.
            # The user joins by themselves, so a new membership is accepted at once.
            inserted = await conn.execute(self._dialect.insert(members).values(
                conversation_id=conversation_id, user_id=user_id, role=role, joined_at=now,
                accepted_at=now,
            ).on_conflict_do_nothing())
            if inserted.rowcount:
                return Member(conversation_id, user_id, user_name, role, now, 0, now), True
            row = (await conn.execute(select(members).where(
                members.c.conversation_id == conversation_id, members.c.user_id == user_id
            ))).first()
            if row is None:
                # Removed between the two statements (PostgreSQL, read committed): rare.
                raise Conflict("the membership changed meanwhile; retry")
            return _to_member(row, user_name), False

        return await write(self._writer, _add_member_unless_present, (conversation_id,))

    async def accept_membership(self, conversation_id: str, user_id: str, now: int) -> bool:
        async def _accept_membership(conn: AsyncConnection) -> bool:
            await lock_conversation(self._writer, conn, conversation_id)
            result = await conn.execute(update(members).where(
                members.c.conversation_id == conversation_id, members.c.user_id == user_id,
                members.c.accepted_at.is_(None),
            ).values(accepted_at=now))
            return bool(result.rowcount)

        return await write(self._writer, _accept_membership, (conversation_id,))

    async def update_settings(self, conversation_id: str, user_id: str,
                              muted: bool | None, pinned: bool | None) -> bool:
        values = {name: value for name, value in (("muted", muted), ("pinned", pinned))
                  if value is not None}

        async def _member_settings(conn: AsyncConnection) -> bool:
            result = await conn.execute(update(members).where(
                members.c.conversation_id == conversation_id, members.c.user_id == user_id,
            ).values(**values))
            return bool(result.rowcount)

        return await write(self._writer, _member_settings, (conversation_id,))

    async def remove_member(self, conversation_id: str, user_id: str) -> bool:
        async def _end_membership(conn: AsyncConnection) -> bool:
            await lock_conversation(self._writer, conn, conversation_id)
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

        return await write(self._writer, _end_membership, (conversation_id,))

    async def remove_all_memberships(self, user_id: str) -> list[str]:
        async with ReadConnection(self._engine) as conn:
            ids = sorted(str(row[0]) for row in (await conn.execute(
                select(members.c.conversation_id).where(members.c.user_id == user_id)
            )).all())
        removed: list[str] = []
        for conversation_id in ids:  # one conversation lock at a time, in id order
            if await self._remove_unconditionally(conversation_id, user_id):
                removed.append(conversation_id)
        return removed

    async def _remove_unconditionally(self, conversation_id: str, user_id: str) -> bool:
        async def _erase_membership(conn: AsyncConnection) -> bool:
            await lock_conversation(self._writer, conn, conversation_id)
            result = await conn.execute(delete(members).where(
                members.c.conversation_id == conversation_id, members.c.user_id == user_id
            ))
            # A direct conversation stops being the pair's: were the user re-created, the
            # pair would find one it is no member of.
            await conn.execute(update(conversations).where(
                conversations.c.id == conversation_id, conversations.c.direct_key.is_not(None)
            ).values(direct_key=None))
            return bool(result.rowcount)

        return await write(self._writer, _erase_membership, (conversation_id,))


async def _user_name(conn: AsyncConnection, user_id: str) -> str:
    """The name of a user who may be added: known, and not erased (server API)."""
    name = (await conn.execute(select(users.c.name).where(
        users.c.id == user_id, users.c.erased_at.is_(None)))).scalar()
    if name is None:
        raise NotFound("unknown user")
    return str(name)


async def _keep_an_owner(conn: AsyncConnection, conversation_id: str, owner_id: str) -> None:
    """Refuse to remove or demote the last owner while other (non-banned) members remain:
    only owners make admins and owners, so the conversation could never be fully managed
    again. Call under the conversation's row lock (PostgreSQL; SQLite has one writer), so
    that concurrent step-downs and leaves are decided one after another.

    Raises:
        Conflict: `owner_id` is the only owner and other members remain.
    """
    others, owners = (await conn.execute(
        select(func.count(), count_where(members.c.role == "owner"))
        .where(members.c.conversation_id == conversation_id, members.c.user_id != owner_id,
               members.c.role != "banned")
    )).one()
    if int(others) > 0 and int(owners) == 0:
        raise Conflict("the last owner cannot leave or step down while others remain; "
                       "make another member owner first")
