"""Reconcile: compare the CRM's id sets with the mirror's, to catch deletions
that incremental pulls cannot see (Salesforce records purged from the recycle
bin or deleted while crmsync was away longer than the getDeleted window,
RELIABILITY D2; HubSpot records deleted for good: past the archived listing's
90 days, GDPR deletes, merged-away ids, D3).

A mirror row whose id the CRM no longer lists is soft-deleted: its flags
resolve and its task is completed by the same run's plan, like any deletion.
Each object costs one id listing (Salesforce: 2,000 ids per query page;
HubSpot: 100 per list page, contact roles from v4 association reads; cost in
bench/README.md "Reconcile"), so it runs on a slow schedule
(`[schedule] reconcile`).

A listing that comes back empty while the mirror holds at least
`mirror.EMPTY_GUARD_ROWS` live rows of that object deletes nothing (the same
guard as a full pull's): an empty answer is more likely a permission or
configuration problem than a CRM emptied for good.

An object the connector lists through an index that lags writes (HubSpot
tasks: search, `connector.listing_lag`) keeps the rows the CRM changed, or
crmsync wrote, within that lag before the run began: a task created a moment
ago is missing from the listing, not from the CRM.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import datetime

import sqlite_utils

from crmsync.connectors.base import Connector
from crmsync.state import mirror
from crmsync.state.db import transaction
from crmsync.state.model import ObjectType

log = logging.getLogger(__name__)

OBJECTS = (
    ObjectType.ACCOUNT,
    ObjectType.CONTACT,
    ObjectType.OPPORTUNITY,
    ObjectType.CONTACT_ROLE,
    ObjectType.TASK,
)


class _Counted:
    """An id stream that counts what it yielded."""

    def __init__(self, ids: Iterable[str]) -> None:
        self.ids = ids
        self.n = 0

    def __iter__(self) -> Iterator[str]:
        for rid in self.ids:
            self.n += 1
            yield rid


def reconcile(
    db: sqlite_utils.Database, connector: Connector, *, seen_at: datetime
) -> dict[str, dict[str, int]]:
    """Soft-delete mirror rows whose ids the CRM no longer has.

    Returns, per object reconciled, {"deleted": rows, "listed": ids, "api_calls": calls}.
    """
    out: dict[str, dict[str, int]] = {}
    for obj in OBJECTS:
        counts = reconcile_object(db, connector, obj, seen_at=seen_at)
        if counts is not None:
            out[obj.value] = counts
    return out


def reconcile_object(
    db: sqlite_utils.Database, connector: Connector, obj: ObjectType, *, seen_at: datetime
) -> dict[str, int] | None:
    """Reconcile one object: {"deleted", "listed", "api_calls"}, or None when the CRM
    cannot list it. sync/pull.py calls this after an incremental that may have missed
    deletes (the connector's `missed_deletes`: Salesforce, away longer than the bin)."""
    before = connector.calls.total
    ids = connector.reconcile_ids(obj)
    if ids is None:
        log.info("reconcile skipped an object the CRM cannot list",
                 extra={"crm": connector.crm, "object": obj.value})
        return None
    listed = _Counted(ids)
    # HubSpot's search is eventually consistent (api-facts §3, airbyte #69203; P6).
    lag = connector.listing_lag(obj)
    with transaction(db):
        n = mirror.delete_missing(db, connector.crm, obj, listed, seen_at,
                                  guard=mirror.EMPTY_GUARD_ROWS,
                                  changed_after=seen_at - lag if lag else None)  # fmt: skip
    if n:
        log.info("reconcile found deletions",
                 extra={"crm": connector.crm, "object": obj.value, "deleted": n})
    return {"deleted": n, "listed": listed.n, "api_calls": connector.calls.total - before}
