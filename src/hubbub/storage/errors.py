"""The one error every store raises for a database that did not answer."""

from __future__ import annotations

from hubbub.domain.errors import ChatError, Code


class StoreUnavailable(ChatError):
    """The database did not answer; reported to clients as INTERNAL_ERROR."""

    code = Code.INTERNAL_ERROR
    http_status = 503
