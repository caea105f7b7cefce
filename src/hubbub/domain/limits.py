"""Every bound of PROTOCOL.md that is not a setting, in one place.

The wire types (protocol/), the services and the `Connected.limits` greeting read these
names; docs/PROTOCOL.md states the same numbers (tests/unit/test_limits.py compares them).
This module imports nothing, so protocol/ may read it without depending on the domain.
Bounds an operator tunes (frame size, rates, connections per user) are settings instead.
"""

from __future__ import annotations

# §2: a message's content, in characters (code points); blankness is a rule of its own.
MAX_CONTENT_CHARS = 4000
# §2: attachments per message, and the length of an attachment's URLs.
MAX_ATTACHMENTS = 10
MAX_URL_CHARS = 2048
# §2: a conversation's name (after normalising) and a user's display name.
MAX_NAME_CHARS = 100
# The raw name a request may carry before it is normalised (controls and the like are
# dropped then, so the text on the wire may be longer than what is kept).
MAX_RAW_NAME_CHARS = 200
# §2: `request_id` and `client_message_id`.
MAX_ID_CHARS = 64
# §2: a user id, the backend's own (1 to this many printable ASCII characters).
MAX_USER_ID_CHARS = 128
# §3 FetchHistory (and the HTTP message list, and the call history): one page.
HISTORY_LIMIT_MAX = 100
HISTORY_LIMIT_DEFAULT = 50
# §3 SearchMessages: results per query, and the query's length.
SEARCH_LIMIT_MAX = 100
SEARCH_LIMIT_DEFAULT = 50
MAX_QUERY_CHARS = 200
# §3 SyncMessages: changes per page.
SYNC_LIMIT_MAX = 500
SYNC_LIMIT_DEFAULT = 100
# §3 reactions: one emoji's length.
MAX_EMOJI_CHARS = 32
# §7 POST /conversations: the members named at creation.
MAX_INITIAL_MEMBERS = 1000
# §3 SendMessage: the user ids (and `@here`/`@all`) one message mentions.
MAX_MENTIONS = 50

# Reactions on one message (docs/DECISIONS.md, "Reactions"). Room for every emoji a
# conversation really uses on one message (Slack allows 50 distinct reactions per message,
# Discord 20). With emoji of at most 32 characters a full list costs ~9.5 KiB of a message
# object (measured: 50 emoji of 32 four-byte characters), plus 39 bytes per further user
# on an emoji present.
MAX_EMOJI_PER_MESSAGE = 50
# A person expresses a few reactions to one message, not dozens; 20 keeps one user from
# taking most of the message's emoji on their own (the cap above is shared).
MAX_REACTIONS_PER_USER = 20
