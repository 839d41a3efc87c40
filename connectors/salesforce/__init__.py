"""The Salesforce connector: simple-salesforce in, canonical Pages out, outbox writes back.

    connector = SalesforceConnector(settings)            # no network yet
    connector.check()                                    # log in, one `limits` call
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
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from connectors.base import ApiCalls, Quota
from connectors.retry import DEFAULT_POLICY, RetryPolicy, Sleep
from connectors.salesforce.client import SalesforceClient, Settings
from connectors.salesforce.fields import object_maps
from connectors.salesforce.pull import Puller, PullStats
from connectors.salesforce.push import Writer
from connectors.salesforce.setup import ensure_fields
from state.model import (
    CrmRecord,
    Cursor,
    FieldCheck,
    ObjectType,
    OutboxItem,
    Page,
    WriteResult,
)

__all__ = ["PullStats", "SalesforceConnector", "Settings"]


class SalesforceConnector:
    """connectors.base.Connector for Salesforce. One instance per run (describes are cached)."""

    crm = "salesforce"

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
        self.writer = Writer(self.client, settings, self.maps, self.puller.resolved)

    def check(self) -> None:
        """Log in and make one call (`limits`); raises AuthFailed / CrmUnavailable."""
        body = self.client.restful("limits/", operation="limits") or {}
        daily = body.get("DailyApiRequests") or {}
        if self.client.limit is None and daily.get("Max"):
            self.client.limit = int(daily["Max"])
            self.client.used = int(daily["Max"]) - int(daily.get("Remaining", daily["Max"]))

    def pull(
        self, obj: ObjectType, cursor: Cursor | None, *, full: bool, started_at: datetime
    ) -> Iterator[Page]:
        return self.puller.pull(obj, cursor, full=full, started_at=started_at)

    def reconcile_ids(self, obj: ObjectType) -> Iterator[str]:
        return self.puller.reconcile_ids(obj)

    def reconcile(self, obj: ObjectType, known_ids: Iterable[str]) -> Iterator[Page]:
        return self.puller.reconcile(obj, known_ids)

    def ensure_fields(self, *, dry_run: bool) -> list[FieldCheck]:
        return ensure_fields(self.client, self.settings, dry_run=dry_run)

    def write(self, batch: Sequence[OutboxItem]) -> list[WriteResult]:
        return self.writer.write(batch)

    def find_tasks_by_keys(self, keys: Iterable[str]) -> dict[str, CrmRecord]:
        return self.writer.find_tasks_by_keys(keys)

    def quota(self) -> Quota:
        return self.client.quota()

    @property
    def stats(self) -> dict[ObjectType, PullStats]:
        """Per-object statistics of the pulls made by this instance."""
        return self.puller.stats
