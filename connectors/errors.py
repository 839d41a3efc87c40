"""What can go wrong talking to a CRM, classified by what the caller does next.

    CrmError            .crm .operation .status .code .detail
    ├── CrmUnavailable  retry; after the last attempt the run aborts (exit 3)
    │   └── RateLimited retry after .retry_after seconds
    ├── QuotaExhausted  stop cleanly, keep the cursor, say when to retry (exit 3)
    ├── AuthFailed      abort the run (exit 3)
    ├── RecordRejected  row stays in the outbox with .code/.detail; batch goes on (exit 1)
    └── MalformedRecord log with the record id, skip, count

Connectors translate library exceptions into these; nothing above connectors/
catches a simple-salesforce or hubspot-api-client exception.
"""

from __future__ import annotations

from datetime import datetime


class CrmError(Exception):
    def __init__(
        self,
        message: str,
        *,
        crm: str = "",
        operation: str = "",
        status: int | None = None,
        code: str | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.crm = crm
        self.operation = operation
        self.status = status
        self.code = code
        self.detail = detail


class CrmUnavailable(CrmError):
    """5xx, connection reset, timeout: worth retrying."""


class RateLimited(CrmUnavailable):
    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class QuotaExhausted(CrmError):
    """The daily allocation (or crmsync's configured share of it) is used up."""

    def __init__(self, message: str, *, retry_at: datetime | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_at = retry_at


class AuthFailed(CrmError):
    """Bad or revoked credentials; retrying will not help."""


class RecordRejected(CrmError):
    """The CRM refused one record of a write."""


class MalformedRecord(CrmError):
    """A record from the CRM that cannot be mapped to the canonical model."""

    def __init__(self, message: str, *, record_id: str = "", **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.record_id = record_id
