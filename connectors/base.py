"""The connector contract: what sync/ may ask of a CRM connector.

A connector speaks to one CRM through its official client library, yields
records in the canonical shape (state.model) and takes write batches. It knows
nothing of rules.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from crmsync.connectors.retry import Sleep
from crmsync.state.model import (
    CrmRecord,
    Cursor,
    FieldChange,
    FieldCheck,
    ObjectType,
    OutboxItem,
    Page,
    WriteResult,
)
from crmsync.state.schema_cache import SchemaStore


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
    """What sync/ may ask of a CRM connector: every member, so nothing probes with hasattr.

    A capability one CRM lacks is still a member; it answers None (or False) there, and the
    docstring says where. tests/connectors/contract.py holds both connectors to it.
    """

    crm: str  # "salesforce" | "hubspot"
    calls: ApiCalls
    # How far the connector's look-ups by key or id may lag its own writes: a record written
    # this recently may be missing from `find_tasks_by_keys` and from `reconcile_ids`
    # (`listing_lag(obj)` says which objects are listed that way). HubSpot's search index lags
    # (`[hubspot] search_lag_seconds`, P6); Salesforce's queries read the records (0).
    index_lag: timedelta
    write_batch: int  # rows per write call: the CRM's batch limit (Salesforce 200, HubSpot 100)

    def __init__(
        self, settings: object, *, calls: ApiCalls | None = None, sleep: Sleep = time.sleep
    ) -> None:
        """Build the connector from its CRM's settings (sync/config.py); no network yet."""

    def check(self) -> None:
        """Authenticate and reach the API; raise AuthFailed / CrmUnavailable."""

    def use_schema_store(self, store: SchemaStore) -> None:
        """Keep schema look-ups (Salesforce describes, HubSpot property lists and owners) in
        `store` between runs (the mirror's, sync/run.py); until called, for this instance only."""

    def pull_again(self) -> list[ObjectType]:
        """Objects sync/pull.py pulls once more after the others: HubSpot's owners when a
        record named an owner the kept owners lack (issue 14); [] otherwise."""

    def pull(
        self, obj: ObjectType, cursor: Cursor | None, *, full: bool, started_at: datetime
    ) -> Iterator[Page]:
        """Pages of `obj`: everything when `full`, else what changed since `cursor`.

        `cursor` (when given with `full`) is a full pull's own checkpoint to resume
        from. Every page carries the cursor that holds once it is committed; no
        cursor is ever later than `started_at` minus the connector's skew margin.
        """

    def listing_lag(self, obj: ObjectType) -> timedelta:
        """How far `reconcile_ids(obj)` may lag writes: `index_lag` for an object listed
        through search (HubSpot tasks), else 0."""

    def crm_info(self, known: Mapping[str, str]) -> dict[str, str]:
        """Facts about the org or portal that links to records need (state/crm_info.py),
        given what the mirror already knows; {} when there is nothing new."""

    def missed_deletes(self, obj: ObjectType) -> bool:
        """The last incremental pull of `obj` may have missed deletions (Salesforce: the
        recycle bin was emptied past the cursor); sync/pull.py then reconciles its ids.
        Always False on HubSpot, whose incremental pull lists archived records too."""

    def reconcile_ids(self, obj: ObjectType) -> Iterator[str] | None:
        """Every id the CRM holds of `obj` (sync/reconcile.py); None: it cannot list them."""

    def company_contacts(self, company_ids: Iterable[str]) -> Iterator[tuple[str, str, bool]] | None:
        """(contact id, company id, primary) of the companies' contacts, for the moves no
        date shows (sync/pull.py `company_moves`); None: the connector makes no such sweep
        (Salesforce; HubSpot with `sweep_associations = false`)."""

    def deal_labels(self, deal_ids: Iterable[str]) -> Iterator[tuple[str, str]] | None:
        """(deal id, contact-role id) of the deals' labelled contacts, for label changes no
        date shows (sync/pull.py `label_changes`); None: no such sweep (as above)."""

    def reread(self, obj: ObjectType, ids: Sequence[str], *, started_at: datetime) -> Iterator[Page]:
        """Pages of `obj`'s records by id (no cursor), after `company_contacts` named them."""

    def reread_labels(self, deal_ids: Sequence[str], *, started_at: datetime) -> Iterator[Page]:
        """Contact-role pages of the deals' labels as they are now, after `deal_labels`."""

    def latest_changes(
        self, obj: ObjectType, fields_by_id: Mapping[str, Sequence[str]]
    ) -> dict[tuple[str, str], FieldChange] | None:
        """{(record id, canonical field): who changed it last}, for conflicts; None: the
        CRM keeps no history crmsync reads (Salesforce)."""

    def ensure_fields(self, *, dry_run: bool) -> list[FieldCheck]:
        """Check, and unless dry_run create, the fields crmsync writes to."""

    def write(self, batch: Sequence[OutboxItem]) -> list[WriteResult]:
        """Apply a batch of writes; one result per item, in order. Rejections are
        results (ok=False), not exceptions; transport failures raise."""

    def find_tasks_by_keys(self, keys: Iterable[str]) -> Mapping[str, CrmRecord | str]:
        """Tasks that already exist in the CRM with these crmsync keys, by key: the task
        record (Salesforce) or its id (HubSpot). Settles writes a crash left in flight."""
        # TODO(write-back split): one shape (the id) once drain no longer reflects the record.

    def quota(self) -> Quota:
        """The last known API usage from the CRM's limit headers."""

    def owned_fields_missing(self) -> list[FieldCheck]:
        """crmsync's own fields (those write-back writes and `ensure_fields` creates) the
        CRM lacks, as the schema the pull already read shows them: after a pull this
        costs no API call. Empty when write-back can go ahead."""

    @staticmethod
    def is_missing_field_error(code: str | None, detail: str | None) -> bool:
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
