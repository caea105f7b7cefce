"""Domain records → wire objects (PROTOCOL.md §2). Done once per event, never per recipient."""

from __future__ import annotations

import msgspec
from msgspec import UNSET

from hubbub.domain.calls import Call
from hubbub.domain.clock import format_optional, format_time
from hubbub.domain.models import Conversation, ConversationSummary, Message
from hubbub.protocol.objects import (
    CallObject,
    ConversationObject,
    MessageObject,
    Reaction,
    Role,
)


def message_object(message: Message) -> MessageObject:
    """The wire form; a deleted message is a tombstone with no content (§2)."""
    deleted = message.deleted_at is not None
    return MessageObject(
        id=message.id,
        conversation_id=message.conversation_id,
        sender_id=message.sender_id,
        sender_name=message.sender_name,
        seq=message.seq,
        version=message.version,
        content="" if deleted else message.content,
        parent_id=message.parent_id,
        attachments=[] if deleted else list(message.attachments),
        reactions=[] if deleted else [
            Reaction(r.emoji, len(r.user_ids), list(r.user_ids)) for r in message.reactions
        ],
        client_message_id=message.client_message_id,
        created_at=format_time(message.created_at),
        edited_at=format_optional(message.edited_at),
        deleted_at=format_optional(message.deleted_at),
        kind="system" if message.is_system else "user",
        mentions=list(message.mentions),
        reply_count=message.reply_count,
        last_reply_at=format_optional(message.last_reply_at),
    )


def conversation_object(conversation: Conversation, role: Role | None = None) -> ConversationObject:
    """A conversation; `role` is filled in when the caller is a member."""
    return ConversationObject(
        id=conversation.id,
        kind=conversation.kind,
        name=conversation.name,
        created_by=conversation.created_by,
        created_at=format_time(conversation.created_at),
        version=conversation.version,
        member_count=conversation.member_count,
        role=role if role is not None else UNSET,
    )


def summary_object(summary: ConversationSummary) -> ConversationObject:
    """A conversation as its member sees it in their list."""
    last = summary.last_message
    return msgspec.structs.replace(
        conversation_object(summary.conversation, summary.role),
        unread_count=summary.unread_count,
        mention_count=summary.mention_count,
        last_read_seq=summary.last_read_seq,
        muted=summary.muted,
        pinned=summary.pinned,
        last_message=None if last is None else message_object(last),
    )


def call_object(call: Call) -> CallObject:
    """The wire form of a call record (the call history)."""
    return CallObject(
        id=call.id, conversation_id=call.conversation_id, caller_id=call.caller_id,
        callee_id=call.callee_id, call_type=call.call_type, state=call.state.value,
        created_at=format_time(call.created_at), answered_at=format_optional(call.answered_at),
        ended_at=format_optional(call.ended_at),
        end_reason=None if call.end_reason is None else call.end_reason.value,
    )
