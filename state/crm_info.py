"""What each CRM says about itself, kept so that reports work offline.

A few facts a pull learns from the CRM and nothing else needs a network for:
the Salesforce instance URL (from the login) and the HubSpot portal id and UI
domain (from HubSpot's account details). The leader report builds links that
open a record in the CRM from them (sync/leader_report.py).

    remember(db, "hubspot", {"portal_id": "123456"}, at=now)   # commits unless nested
    known(db, "hubspot") -> {"portal_id": "123456"}
    every(db) -> {"hubspot": {...}, "salesforce": {...}}

Values are short text; an empty or None value leaves the stored one alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import sqlite_utils

from crmsync.state.db import encode_datetime, transaction

# The keys connectors report (connectors/*/__init__.py `crm_info`).
INSTANCE_URL = "instance_url"  # Salesforce: https://<instance>
PORTAL_ID = "portal_id"  # HubSpot: the account's portal (hub) id
UI_DOMAIN = "ui_domain"  # HubSpot: app.hubspot.com, app-eu1.hubspot.com, ...


def remember(
    db: sqlite_utils.Database, crm: str, values: Mapping[str, str | None], *, at: datetime
) -> int:
    """Store the non-empty values for `crm`; return how many changed."""
    rows = [(crm, str(k), str(v)) for k, v in sorted(values.items()) if v not in (None, "")]
    if not rows:
        return 0
    stored = known(db, crm)
    changed = [r for r in rows if stored.get(r[1]) != r[2]]
    if not changed:
        return 0
    with transaction(db):
        db.conn.executemany(
            "INSERT INTO crm_info (crm, key, value, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (crm, key) DO UPDATE SET value = excluded.value,"
            " updated_at = excluded.updated_at",
            [(*r, encode_datetime(at)) for r in changed],
        )
    return len(changed)


def known(db: sqlite_utils.Database, crm: str) -> dict[str, str]:
    """The stored facts of one CRM."""
    return dict(
        db.conn.execute("SELECT key, value FROM crm_info WHERE crm = ? ORDER BY key", [crm])
    )


def every(db: sqlite_utils.Database) -> dict[str, dict[str, str]]:
    """{crm: {key: value}} for every CRM."""
    out: dict[str, dict[str, str]] = {}
    for crm, key, value in db.conn.execute(
        "SELECT crm, key, value FROM crm_info ORDER BY crm, key"
    ):
        out.setdefault(crm, {})[key] = value
    return out
