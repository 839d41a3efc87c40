"""Reconcile: compare the CRM's id sets with the mirror's, to catch deletions
that incremental pulls cannot see (Salesforce records purged from the recycle
bin or deleted while crmsync was away longer than the getDeleted window,
RELIABILITY D2; HubSpot archives older than the archived listing, D3).

Costs one id-only query per object (ids page at 2,000 on Salesforce, 100 on
HubSpot lists), so it runs on a slow schedule (`[schedule] reconcile`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlite_utils

from state import mirror
from state.db import transaction
from state.model import ObjectType

log = logging.getLogger(__name__)

OBJECTS = (ObjectType.ACCOUNT, ObjectType.CONTACT, ObjectType.OPPORTUNITY, ObjectType.CONTACT_ROLE)


def reconcile(db: sqlite_utils.Database, connector: Any, *, seen_at: datetime) -> dict[str, int]:
    """Soft-delete mirror rows whose ids the CRM no longer has; return counts per object."""
    if not hasattr(connector, "reconcile_ids"):
        log.warning("connector cannot list ids; reconcile skipped", extra={"crm": connector.crm})
        return {}
    out: dict[str, int] = {}
    for obj in OBJECTS:
        with transaction(db):
            n = mirror.delete_missing(db, connector.crm, obj, connector.reconcile_ids(obj), seen_at)
        out[obj.value] = n
        if n:
            log.info("reconcile found deletions", extra={"crm": connector.crm, "object": obj.value, "deleted": n})
    return out
