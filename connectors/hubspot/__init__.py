"""The HubSpot connector: hubspot-api-client 12 on one side, canonical pages and writes on the other.

client.py   Settings ([hubspot] in sync.toml) and HubSpotClient, the one door for HTTP calls
auth.py     private app token / OAuth refresh with rotation
limiter.py  10-second and search-per-second sliding windows
daily.py    crmsync's share of the account's daily API limit (max_daily_share)
fields.py   every HubSpot property name and converter
pull.py     full, incremental, archived, merged; contact roles
push.py     batch writes with 207 mapping and bisection; task lookup by key
setup.py    crmsync's property group and properties
history.py  who changed a property last (property history), to explain conflicts
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from crmsync.connectors.base import ApiCalls, Quota
from crmsync.connectors.retry import DEFAULT_POLICY, RetryPolicy
from crmsync.state.model import (
    Cursor,
    FieldChange,
    FieldCheck,
    ObjectType,
    OutboxItem,
    Page,
    WriteResult,
)
from crmsync.state.schema_cache import SchemaStore

from . import account, history, setup
from . import fields as f
from .auth import TokenSource
from .client import HubSpotClient, Settings
from .limiter import Limiter
from .pull import Puller
from .push import BATCH, Pusher

__all__ = ["HubSpotConnector", "Settings"]


class HubSpotConnector:
    """connectors.base.Connector for HubSpot."""

    crm = "hubspot"
    write_batch = BATCH

    def __init__(
        self,
        settings: Settings,
        *,
        calls: ApiCalls | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        policy: RetryPolicy = DEFAULT_POLICY,
        limiter: Limiter | None = None,
        token_source: TokenSource | None = None,
    ) -> None:
        self.settings = settings
        self.calls = calls if calls is not None else ApiCalls()
        # Task look-ups by key read the search index, which lags writes (`search_lag_seconds`):
        # sync/drain.py `_recover` does not give up on a create younger than this.
        self.index_lag = timedelta(seconds=settings.search_lag_seconds)
        self.client = HubSpotClient(
            settings,
            calls=self.calls,
            limiter=limiter,
            sleep=sleep,
            clock=clock,
            wall_clock=wall_clock,
            policy=policy,
            token_source=token_source,
        )
        self.puller = Puller(self.client, settings)
        self.pusher = Pusher(self.client, self.puller.schema)

    def check(self) -> None:
        """Authenticate and reach the API; raises AuthFailed / CrmUnavailable. A private app's
        run starts with its daily usage read (daily.py), which does both; otherwise (OAuth,
        or a token that may not read the usage) one owners call."""
        if not self.client.reach():
            self.client.call("check", "crm.owners.owners_api", "get_page", limit=1)

    def use_schema_store(self, store: SchemaStore) -> None:
        """Keep property lists (`schema_max_age_hours`) and owners (`owners_max_age_minutes`)
        in `store` (the mirror's) between runs."""
        self.puller.store = store

    def pull_again(self) -> list[ObjectType]:
        """Owners, when a record this pull read names an owner the kept owners lack."""
        return self.puller.pull_again()

    def pull(
        self, obj: ObjectType, cursor: Cursor | None, *, full: bool, started_at: datetime
    ) -> Iterator[Page]:
        return self.puller.pull(obj, cursor, full=full, started_at=started_at)

    def crm_info(self, known: Mapping[str, str]) -> dict[str, str]:
        """The portal id and UI domain links to records need (account.py): one call,
        only while the mirror does not know them yet."""
        return account.details(self.client, known)

    def company_contacts(
        self, company_ids: Iterable[str]
    ) -> Iterator[tuple[str, str, bool]] | None:
        """(contact id, company id, primary) of the companies' contacts, for sync/pull.py's
        `company_moves` (primary-company changes that moved no date); None when
        `sweep_associations = false`."""
        if not self.settings.sweep_associations:
            return None
        return self.puller.company_contacts(company_ids)

    def deal_labels(self, deal_ids: Iterable[str]) -> Iterator[tuple[str, str]] | None:
        """(deal id, contact-role id) of the deals' labelled contacts, for sync/pull.py's
        `label_changes` (labels changed with no date moving); None when
        `sweep_associations = false`."""
        if not self.settings.sweep_associations:
            return None
        return self.puller.deal_labels(deal_ids)

    def reread_labels(self, deal_ids: Sequence[str], *, started_at: datetime) -> Iterator[Page]:
        """Contact-role pages of the deals' labels as they are now (no cursor)."""
        return self.puller.reread_labels(deal_ids, started_at)

    def reread(
        self, obj: ObjectType, ids: Sequence[str], *, started_at: datetime
    ) -> Iterator[Page]:
        """Pages of `obj`'s records by id (no cursor)."""
        return self.puller.reread(obj, ids, started_at)

    def missed_deletes(self, obj: ObjectType) -> bool:
        """False: every incremental pull also lists the archived records (pull.py)."""
        return False

    def reconcile_ids(self, obj: ObjectType) -> Iterator[str] | None:
        """Every id HubSpot holds of `obj` (sync/reconcile.py); None: cannot list it."""
        return self.puller.reconcile_ids(obj)

    def listing_lag(self, obj: ObjectType) -> timedelta:
        """How far `reconcile_ids(obj)` may lag writes: tasks are listed through search (only
        crmsync's, pull.py `reconcile_ids`), the rest through the list endpoints, which read
        the records themselves."""
        return self.index_lag if obj is ObjectType.TASK else timedelta(0)

    def ensure_fields(self, *, dry_run: bool) -> list[FieldCheck]:
        checks = setup.ensure_fields(self.client, self.settings, dry_run=dry_run)
        if any(c.status == "created" for c in checks):
            self.puller.forget_schema()
        return checks

    def write(self, batch: Sequence[OutboxItem]) -> list[WriteResult]:
        return self.pusher.write(batch)

    def owned_fields_missing(self) -> list[FieldCheck]:
        """crmsync's properties (written back, created by `setup`) the portal lacks.

        Read from the property lists the pull already read (an object not read
        yet costs one call); a list kept from an earlier run that lacks one is read again.
        """
        missing: list[FieldCheck] = []
        for hs_type, names in (
            (f.COMPANIES, f.OWNED_ACCOUNT.values()),
            (f.CONTACTS, f.OWNED_CONTACT.values()),
            (f.TASKS, f.OWNED_TASK.values()),
        ):
            schema = self.puller.schema(hs_type)
            if not all(n in schema for n in names) and self.puller.kept_schema(hs_type):
                # a kept list may predate the properties (created in HubSpot, not by setup)
                schema = self.puller.schema(hs_type, fresh=True)
            missing.extend(FieldCheck(hs_type, n, "missing") for n in names if n not in schema)
        return missing

    @staticmethod
    def is_missing_field_error(code: str | None, detail: str | None) -> bool:
        """A write refused because a property it sets does not exist (setup fixes it).

        HubSpot answers a batch that sets an unknown property with a 400
        VALIDATION_ERROR whose message embeds one entry per property,
        `Property values were not valid: [{"error":"PROPERTY_DOESNT_EXIST",
        "name":"crmsync_status",...}]` (CRM API error responses; the sandbox
        answers the same, sandbox/hubspot/properties.py `check_value`);
        push.py keeps that code on each row it rejects.
        """
        return code == "PROPERTY_DOESNT_EXIST"

    def latest_changes(
        self, obj: ObjectType, fields_by_id: Mapping[str, Sequence[str]]
    ) -> dict[tuple[str, str], FieldChange]:
        """{(record id, canonical field): who changed it last}, from property history
        (history.py; one call per 50 records)."""
        hs_type, names = _HISTORY_NAMES[obj]
        wanted = {
            rid: [names[n] for n in fields if n in names] for rid, fields in fields_by_id.items()
        }
        back = {v: k for k, v in names.items()}
        found = history.latest_changes(self.client, hs_type, {k: v for k, v in wanted.items() if v})
        return {(rid, back[prop]): change for (rid, prop), change in found.items()}

    def find_tasks_by_keys(self, keys: Iterable[str]) -> dict[str, str]:
        """crmsync_key -> task id of tasks that already exist in HubSpot (W4).

        Through search: a task created less than `index_lag` ago may be missing.
        """
        return self.pusher.find_tasks_by_keys(keys)

    def quota(self) -> Quota:
        """The account's daily API usage as last seen (daily.py): the account-info API, then
        X-HubSpot-RateLimit-Daily(-Remaining), counting calls in between. None for OAuth apps."""
        return Quota(used=self.client.daily.used, limit=self.client.daily.limit)

    @property
    def malformed(self) -> int:
        """Records skipped as malformed since this connector was built."""
        return self.puller.malformed


_HISTORY_NAMES: Mapping[ObjectType, tuple[str, Mapping[str, str]]] = {
    ObjectType.ACCOUNT: (f.COMPANIES, f.OWNED_ACCOUNT),
    ObjectType.CONTACT: (f.CONTACTS, f.OWNED_CONTACT),
    ObjectType.TASK: (f.TASKS, f.TASK_PROPERTIES),
}


def _int(v: object) -> int | None:
    try:
        return int(str(v))
    except (TypeError, ValueError):
        return None
