"""The Salesforce connector: simple-salesforce in, canonical Pages out, outbox writes back.

    connector = SalesforceConnector(settings)            # no network yet
    connector.use_schema_store(store)                    # describes kept in the mirror
    connector.check()                                    # log in (no other call)
    for page in connector.pull(ObjectType.CONTACT, cursor, full=False, started_at=now):
        ...                                              # commit page.records + page.cursor together
    connector.write(outbox_items)                        # -> [WriteResult], in order
    connector.ensure_fields(dry_run=True)                # -> [FieldCheck]
    connector.calls.by_operation, connector.quota()      # API calls spent, last known usage

Reading order: client.py (settings, auth, counting, errors) -> fields.py (SF
names <-> canonical) -> pull.py (full / bulk / incremental / reconcile) ->
push.py (collections) -> setup.py (custom fields).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta

from crmsync.connectors.base import ApiCalls, Quota
from crmsync.connectors.retry import DEFAULT_POLICY, RetryPolicy, Sleep
from crmsync.connectors.salesforce.client import SalesforceClient, Settings
from crmsync.connectors.salesforce.fields import object_maps, owned_names
from crmsync.connectors.salesforce.pull import Puller, PullStats
from crmsync.connectors.salesforce.push import BATCH, Pusher
from crmsync.connectors.salesforce.setup import ensure_fields
from crmsync.state.model import (
    CrmRecord,
    Cursor,
    FieldCheck,
    ObjectType,
    OutboxItem,
    Page,
    WriteResult,
)
from crmsync.state.schema_cache import SchemaStore

__all__ = ["PullStats", "SalesforceConnector", "Settings"]


class SalesforceConnector:
    """connectors.base.Connector for Salesforce. One instance per run (describes are cached)."""

    crm = "salesforce"
    write_batch = BATCH
    # SOQL queries read the records themselves: a task is found by its key, and listed, as
    # soon as it is written (sync/drain.py `_recover`, sync/reconcile.py).
    index_lag = timedelta(0)

    def __init__(
        self,
        settings: Settings,
        *,
        calls: ApiCalls | None = None,
        sleep: Sleep = time.sleep,
        retry: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        self.settings = settings
        self.calls = calls if calls is not None else ApiCalls()
        self.maps = object_maps(settings)
        self.client = SalesforceClient(settings, self.calls, sleep=sleep, retry=retry)
        self.puller = Puller(self.client, settings, self.maps, sleep=sleep)
        self.pusher = Pusher(self.client, settings, self.maps, self.puller.resolved)

    def check(self) -> None:
        """Log in; raises AuthFailed / CrmUnavailable. No `limits` call (issue 14): "This
        response header is returned in each request to REST API" -- Sforce-Limit-Info:
        api-usage=used/max (REST API Developer Guide, "Limit Info Header") -- so the share
        guard reads the org's usage from the first data request's answer and holds from
        the second request on (client.py `check_quota`)."""
        self.client.call("auth", lambda sf: None)

    def use_schema_store(self, store: SchemaStore) -> None:
        """Keep describes in `store` (the mirror's) between runs; `schema_max_age_hours`."""
        self.client.schema = store

    def pull_again(self) -> list[ObjectType]:
        """None: every incremental queries User like any object (one call)."""
        return []

    def pull(
        self, obj: ObjectType, cursor: Cursor | None, *, full: bool, started_at: datetime
    ) -> Iterator[Page]:
        return self.puller.pull(obj, cursor, full=full, started_at=started_at)

    def crm_info(self, known: Mapping[str, str]) -> dict[str, str]:
        """The org's instance URL, which links to records need (no API call: the login
        answered it; simple-salesforce keeps it as `sf_instance`, host[:port])."""
        instance = getattr(self.client.sf, "sf_instance", None)
        return {"instance_url": f"https://{instance}"} if instance else {}

    def reconcile_ids(self, obj: ObjectType) -> Iterator[str]:
        return self.puller.reconcile_ids(obj)

    def listing_lag(self, obj: ObjectType) -> timedelta:
        """How far `reconcile_ids(obj)` may lag writes: not at all (SOQL reads the records)."""
        return self.index_lag

    def reconcile(self, obj: ObjectType, known_ids: Iterable[str]) -> Iterator[Page]:
        return self.puller.reconcile(obj, known_ids)

    def company_contacts(self, company_ids: Iterable[str]) -> None:
        """No association sweep: a contact's account is its AccountId field."""
        return None

    def deal_labels(self, deal_ids: Iterable[str]) -> None:
        """No association sweep: an OpportunityContactRole is a record with its own dates."""
        return None

    def reread(self, obj: ObjectType, ids: Sequence[str], *, started_at: datetime) -> Iterator[Page]:
        raise NotImplementedError("Salesforce makes no association sweep to re-read after")

    def reread_labels(self, deal_ids: Sequence[str], *, started_at: datetime) -> Iterator[Page]:
        raise NotImplementedError("Salesforce makes no association sweep to re-read after")

    def latest_changes(
        self, obj: ObjectType, fields_by_id: Mapping[str, Sequence[str]]
    ) -> None:
        """None: crmsync reads no Salesforce field history, so who made a conflict stays unknown."""
        return None

    def missed_deletes(self, obj: ObjectType) -> bool:
        """The last incremental pull of `obj` may have missed deletions: its cursor is older
        than the recycle bin keeps deleted rows (15 days), or getDeleted said rows were purged
        after it (D2). sync/pull.py then reconciles the object's ids."""
        stats = self.puller.stats.get(obj)
        return bool(stats and stats.mode == "incremental" and stats.needs_reconcile)

    def ensure_fields(self, *, dry_run: bool) -> list[FieldCheck]:
        return ensure_fields(self.client, self.settings, dry_run=dry_run)

    def write(self, batch: Sequence[OutboxItem]) -> list[WriteResult]:
        return self.pusher.write(batch)

    def owned_fields_missing(self) -> list[FieldCheck]:
        """crmsync's fields (written back, created by `setup`) that describe does not list.

        Read from the describes the pull already made (an object not described
        yet costs one call); a describe kept from an earlier run that lacks one is made again. A field created over the API but not granted to the
        integration user by field-level security is absent too: writes to it fail.
        """
        missing: list[FieldCheck] = []
        for obj in (ObjectType.ACCOUNT, ObjectType.CONTACT, ObjectType.TASK):
            res = self.puller.resolved(obj)
            names = owned_names(self.settings, res.sobject).values()
            if any(res.actual(n) is None for n in names) and self.client.kept(res.sobject):
                # a kept describe may predate the fields (created in Salesforce, not by setup)
                res = self.puller.refresh(obj)
            for name in owned_names(self.settings, res.sobject).values():
                if res.actual(name) is None:
                    missing.append(FieldCheck(res.sobject, name, "missing"))
        return missing

    @staticmethod
    def is_missing_field_error(code: str | None, detail: str | None) -> bool:
        """A write refused because a field it names does not exist or is hidden (setup fixes it).

        What Salesforce answers, and the sandbox with it (sandbox/salesforce/
        store.py `prepare`, writes.py `h_collection_upsert`):
        - INVALID_FIELD, "No such column 'X' on sobject of type Contact": a field
          the org lacks or hides by field-level security (REST API Developer
          Guide, "Status Codes and Error Responses"); also an upsert by a field
          that is not an External ID;
        - INVALID_FIELD_FOR_INSERT_UPDATE: the field exists but the integration
          user may not write it;
        - NOT_FOUND, "The requested resource does not exist": an upsert by an
          external ID field that does not exist (REST API Developer Guide,
          "Upsert Records Using sObject Rows by External ID", error responses).
          NOT_FOUND alone also means a missing record, so the text must match.
        """
        if code in ("INVALID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE"):
            return True
        text = (detail or "").lower()
        return code == "NOT_FOUND" and (
            "external id" in text or "requested resource does not exist" in text
        )

    def find_tasks_by_keys(self, keys: Iterable[str]) -> dict[str, CrmRecord]:
        return self.pusher.find_tasks_by_keys(keys)

    def quota(self) -> Quota:
        return self.client.quota()

    @property
    def stats(self) -> dict[ObjectType, PullStats]:
        """Per-object statistics of the pulls made by this instance."""
        return self.puller.stats
