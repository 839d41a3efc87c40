"""The connector contract: what sync/ may ask of a CRM connector.

A connector speaks to one CRM through its official client library, yields
records in the canonical shape (state.model) and takes write batches. It knows
nothing of rules.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from crmsync.state.model import Cursor, FieldCheck, ObjectType, OutboxItem, Page, WriteResult


@dataclass
class ApiCalls:
    """API calls spent in one run, by operation (e.g. "query", "search", "batch_update").

    Every HTTP request that counts against the CRM's API allocation is counted,
    including retries; auth calls are counted under "auth".
    """

    by_operation: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, operation: str, n: int = 1) -> None:
        with self._lock:
            self.by_operation[operation] += n

    @property
    def total(self) -> int:
        return sum(n for op, n in self.by_operation.items() if op != "auth")

    def reset(self) -> None:
        with self._lock:
            self.by_operation.clear()


@dataclass(frozen=True)
class Quota:
    used: int | None
    limit: int | None


class Connector(Protocol):
    crm: str  # "salesforce" | "hubspot"
    calls: ApiCalls
    # How far the connector's look-ups by key or id may lag its own writes: a record written
    # this recently may be missing from `find_tasks_by_keys` and from `reconcile_ids`
    # (`listing_lag(obj)` says which objects are listed that way). HubSpot's search index lags
    # (`[hubspot] search_lag_seconds`, P6); Salesforce's queries read the records (0).
    index_lag: timedelta

    def check(self) -> None:
        """Authenticate and reach the API; raise AuthFailed / CrmUnavailable."""

    def pull(
        self, obj: ObjectType, cursor: Cursor | None, *, full: bool, started_at: datetime
    ) -> Iterator[Page]:
        """Pages of `obj`: everything when `full`, else what changed since `cursor`.

        `cursor` (when given with `full`) is a full pull's own checkpoint to resume
        from. Every page carries the cursor that holds once it is committed; no
        cursor is ever later than `started_at` minus the connector's skew margin.
        """

    def ensure_fields(self, *, dry_run: bool) -> list[FieldCheck]:
        """Check, and unless dry_run create, the fields crmsync writes to."""

    def write(self, batch: Sequence[OutboxItem]) -> list[WriteResult]:
        """Apply a batch of writes; one result per item, in order. Rejections are
        results (ok=False), not exceptions; transport failures raise."""

    def quota(self) -> Quota:
        """The last known API usage from the CRM's limit headers."""

    def owned_fields_missing(self) -> list[FieldCheck]:
        """crmsync's own fields (those write-back writes and `ensure_fields` creates) the
        CRM lacks, as the schema the pull already read shows them: after a pull this
        costs no API call. Empty when write-back can go ahead."""

    def is_missing_field_error(self, code: str | None, detail: str | None) -> bool:
        """True when a refused write names a field that does not exist (or that the
        integration user cannot see): rows `crmsync setup` makes writable again."""


class Secret:
    """A credential loaded by sync/config.py from an environment variable or file.

    Its repr and str are masked so it cannot leak through logs or tracebacks;
    `reveal()` is called only where the value is handed to a client library.
    """

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str = "") -> None:
        self._value = value
        self.source = source  # e.g. "env SF_PASSWORD" or "file /etc/crmsync/key.pem"

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(<{self.source or 'hidden'}>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)
