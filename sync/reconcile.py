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

from state.db import encode_datetime, transaction
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
        table = obj.value
        # One transaction per object: the id list and the soft deletes it implies land
        # together (the writer lock is held for the whole run anyway).
        with transaction(db):
            db.conn.execute("CREATE TEMP TABLE IF NOT EXISTS _live (id TEXT PRIMARY KEY)")
            db.conn.execute("DELETE FROM _live")
            batch: list[tuple[str]] = []
            for rid in connector.reconcile_ids(obj):
                batch.append((rid,))
                if len(batch) >= 5000:
                    db.conn.executemany("INSERT OR IGNORE INTO _live (id) VALUES (?)", batch)
                    batch.clear()
            if batch:
                db.conn.executemany("INSERT OR IGNORE INTO _live (id) VALUES (?)", batch)
            cur = db.conn.execute(
                f"UPDATE [{table}] SET deleted_at = ? WHERE crm = ? AND deleted_at IS NULL"
                " AND id NOT IN (SELECT id FROM _live)",
                [encode_datetime(seen_at), connector.crm],
            )
        out[table] = cur.rowcount
        if cur.rowcount:
            log.info("reconcile found deletions", extra={"crm": connector.crm, "object": table, "deleted": cur.rowcount})
    db.conn.execute("DROP TABLE IF EXISTS _live")
    return out
