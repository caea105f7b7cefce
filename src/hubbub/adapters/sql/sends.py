"""Storing the sends of one group commit together: the hot path of `MessageStore.send`.

The Writer hands the consecutive sends of a batch to `SendBatch` at once (writer.py), and
they cost three statements whatever their number, instead of three each:

1. one SELECT finds the drafts whose `(sender, conversation, client_message_id)` is
   stored already (idempotent retries: they get the stored message, and take no version);
2. one UPDATE takes a run of versions per conversation (`version + n … RETURNING`), so
   versions stay gapless and in arrival order, exactly as one UPDATE per message would;
3. one INSERT stores every new message.

With `message.undelivered` on (`owe_checks_after`), the version bump also notes each
conversation as owed its check (services/undelivered.py), in the messages' transaction, so
that no commit leaves a message unchecked: on PostgreSQL in the same statement, on SQLite
one INSERT … ON CONFLICT DO NOTHING after it.

The architecture allows the store to run its hot statement on the raw driver behind the same
seam, and a profile showed why: through SQLAlchemy's adapter each statement costs several
hand-offs to aiosqlite's thread (cursor, execute, fetch, close) plus greenlet switches. The
statements of each database are in send_statements.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from hubbub.adapters.sql.send_statements import Counts, Key, Row, SendStatements
from hubbub.domain.errors import ChatError, NotFound
from hubbub.domain.models import Message, MessageDraft, SendOutcome, ThreadChange
from hubbub.protocol.objects import MENTION_EVERYONE

_attachments_encoder = msgspec.json.Encoder()
_mentions_encoder = _attachments_encoder

LoadMessages = Callable[[AsyncConnection, Sequence[str]], Awaitable[list[Message]]]
# The statements of one batch, bound to the Writer's connection (Dialect.send_statements).
BindStatements = Callable[[AsyncConnection], Awaitable[SendStatements]]


class SendBatch:
    """The batch runner of `MessageStore.send` (one per store; see Writer.run_batched)."""

    name = "store_sends"

    def __init__(self, bind: BindStatements, load_messages: LoadMessages) -> None:
        self._bind = bind
        self._load_messages = load_messages
        # The grace (µs) after which new messages are checked (`message.undelivered`);
        # None: not noted at all (webhooks off).
        self.owe_checks_after: int | None = None

    async def __call__(self, conn: AsyncConnection,
                       drafts: Sequence[MessageDraft]) -> list[SendOutcome | ChatError]:
        """Store `drafts` in order; one outcome (or NotFound) per draft, in order."""
        outcomes: list[SendOutcome | ChatError | None] = [None] * len(drafts)
        sql = await self._bind(conn)
        keyed = {_key(d): d for d in drafts if d.client_message_id is not None}
        stored = await sql.existing(list(keyed)) if keyed else {}
        if stored:
            found = {m.id: m for m in await self._load_messages(conn, list(stored.values()))}
            for i, draft in enumerate(drafts):
                message_id = stored.get(_key(draft)) if draft.client_message_id else None
                if message_id is not None and message_id in found:
                    outcomes[i] = SendOutcome(found[message_id], created=False)

        # New drafts, in arrival order; a repeated key in this batch is a retry of the first.
        fresh: list[int] = []
        first_of: dict[Key, int] = {}
        counts: Counts = {}
        for i, draft in enumerate(drafts):
            if outcomes[i] is not None:
                continue
            if draft.client_message_id is not None:
                key = _key(draft)
                if key in first_of:
                    continue
                first_of[key] = i
            fresh.append(i)
            # A reply takes a second version: its parent's thread change (ThreadUpdated).
            n, at = counts.get(draft.conversation_id, (0, 0))
            taken = 1 if draft.parent_id is None else 2
            counts[draft.conversation_id] = (n + taken, max(at, draft.created_at))
        if fresh:
            last = await sql.bump(counts, self.owe_checks_after)
            rows, replies = _take_versions(drafts, fresh, last, counts, outcomes)
            if rows:
                await sql.insert(rows)
                mentioned = _mention_rows(outcomes)
                if mentioned:
                    await sql.insert_mentions(mentioned)
            if replies:
                await _count_replies(sql, replies, outcomes)
        return _complete(outcomes, drafts, first_of)


async def _count_replies(sql: SendStatements, replies: list[tuple[int, int]],
                         outcomes: list[SendOutcome | ChatError | None]) -> None:
    """Add the batch's replies to their parents (one update per parent, at the version of
    its last reply's thread change) and give each reply's outcome the thread change its
    own version made: the count after it, so every version has its event."""
    per_parent: dict[str, list[tuple[int, int]]] = {}
    for index, version in replies:
        outcome = outcomes[index]
        assert isinstance(outcome, SendOutcome)
        assert outcome.message.parent_id is not None
        per_parent.setdefault(outcome.message.parent_id, []).append((index, version))
    updates = [(parent_id, len(taken), max(_created(outcomes, i) for i, _ in taken),
                taken[-1][1]) for parent_id, taken in per_parent.items()]
    counted = await sql.count_replies(updates)
    for parent_id, taken in per_parent.items():
        if parent_id not in counted:
            continue  # the parent is gone (erased); nothing to announce
        final_count, final_at = counted[parent_id]
        for position, (index, version) in enumerate(taken, start=1 - len(taken)):
            outcome = outcomes[index]
            assert isinstance(outcome, SendOutcome)
            last_at = final_at if position == 0 else outcome.message.created_at
            outcomes[index] = SendOutcome(outcome.message, True, ThreadChange(
                outcome.message.conversation_id, parent_id, version,
                final_count + position, last_at))


def _created(outcomes: list[SendOutcome | ChatError | None], index: int) -> int:
    outcome = outcomes[index]
    assert isinstance(outcome, SendOutcome)
    return outcome.message.created_at


def _take_versions(drafts: Sequence[MessageDraft], fresh: list[int], last: dict[str, int],
                   counts: Counts, outcomes: list[SendOutcome | ChatError | None]
                   ) -> tuple[list[Row], list[tuple[int, int]]]:
    """Give each fresh draft its version, `last - n + 1 … last` in arrival order within its
    conversation (a reply the next one too, for its parent's thread), and its outcome; the
    rows to insert and each reply's (index, thread version). A draft whose conversation
    took no versions (it does not exist) gets NotFound."""
    next_version = {cid: last[cid] - counts[cid][0] + 1 for cid in last}
    rows: list[Row] = []
    replies: list[tuple[int, int]] = []
    for i in fresh:
        draft = drafts[i]
        version = next_version.get(draft.conversation_id)
        if version is None:
            outcomes[i] = NotFound("unknown conversation")
            continue
        next_version[draft.conversation_id] = version + 1
        if draft.parent_id is not None:
            replies.append((i, version + 1))
            next_version[draft.conversation_id] = version + 2
        rows.append((
            draft.id, draft.conversation_id, version, version, draft.sender_id,
            draft.content, draft.parent_id,
            _attachments_encoder.encode(list(draft.attachments)).decode()
            if draft.attachments else None,
            draft.client_message_id, draft.created_at,
            _mentions_encoder.encode(list(draft.mentions)).decode()
            if draft.mentions else None,
        ))
        outcomes[i] = SendOutcome(Message(
            id=draft.id, conversation_id=draft.conversation_id, seq=version,
            version=version, sender_id=draft.sender_id, sender_name=draft.sender_name,
            content=draft.content, parent_id=draft.parent_id,
            attachments=draft.attachments, client_message_id=draft.client_message_id,
            created_at=draft.created_at, mentions=draft.mentions,
        ), created=True)
    return rows, replies


def _mention_rows(outcomes: list[SendOutcome | ChatError | None]) -> list[Row]:
    """The message_mentions rows of the messages this batch created: one per mentioned
    user, and one with user id "" for `@here`/`@all` (everyone; no user id is empty)."""
    rows: list[Row] = []
    for outcome in outcomes:
        if not isinstance(outcome, SendOutcome) or not outcome.created:
            continue
        message = outcome.message
        users = dict.fromkeys("" if m in MENTION_EVERYONE else m for m in message.mentions)
        rows += [(message.conversation_id, user_id, message.seq, message.id,
                  message.sender_id) for user_id in users]
    return rows


def _key(draft: MessageDraft) -> Key:
    assert draft.client_message_id is not None
    return (draft.sender_id, draft.conversation_id, draft.client_message_id)


def _complete(outcomes: list[SendOutcome | ChatError | None], drafts: Sequence[MessageDraft],
              first_of: dict[Key, int]) -> list[SendOutcome | ChatError]:
    """Fill in the repeats of a key within the batch from the first draft with that key."""
    done: list[SendOutcome | ChatError] = []
    for i, outcome in enumerate(outcomes):
        if outcome is None:
            first = outcomes[first_of[_key(drafts[i])]]
            assert first is not None
            outcome = first if isinstance(first, ChatError) else SendOutcome(
                first.message, created=False)
        done.append(outcome)
    return done
