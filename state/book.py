"""The book as a leader reads it: read-only queries behind `crmsync report`.

Accounts, contacts and their rules' view come from state/views.py; flags from
state/flags.py; runs from state/runs.py. This module holds the rest the report
needs, each in one query:

    owners(db)   every owner (deleted or not) by (crm, id): names for ids
    tasks(db)    crmsync's tasks in the mirror with their owner's name

Rows are plain dicts with dates and booleans decoded. Nothing here writes.
"""

from __future__ import annotations

from typing import Any

import sqlite_utils

from crmsync.state.db import decode
from crmsync.state.model import Owner

Key = tuple[str, str]


def owners(db: sqlite_utils.Database) -> dict[Key, Owner]:
    """Every mirrored owner by (crm, id); `active` is False for a deactivated or deleted one."""
    out: dict[Key, Owner] = {}
    for crm, oid, name, email, active, deleted_at in db.conn.execute(
        "SELECT crm, id, name, email, active, deleted_at FROM owners ORDER BY crm, id"
    ):
        out[(crm, oid)] = Owner(
            crm, oid, name, email, decode("active", active) and deleted_at is None
        )
    return out


def tasks(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """crmsync's tasks (not deleted), ordered by CRM, account, due date and key.

    Keys: crm, id, key, account_id, contact_id, owner_id, owner_name, subject, status
    (the CRM's own value, e.g. "Not Started" or NOT_STARTED), priority, due_date (a
    date or None), is_closed (bool)."""
    cursor = db.conn.execute(
        """SELECT t.crm, t.id, t.key, t.account_id, t.contact_id, t.owner_id, o.name,
                  t.subject, t.status, t.priority, t.due_date, t.is_closed
           FROM tasks t LEFT JOIN owners o ON o.crm = t.crm AND o.id = t.owner_id
           WHERE t.deleted_at IS NULL
           ORDER BY t.crm, t.account_id, t.due_date, t.key, t.id"""
    )
    names = (
        "crm", "id", "key", "account_id", "contact_id", "owner_id", "owner_name",
        "subject", "status", "priority", "due_date", "is_closed",
    )  # fmt: skip
    out = []
    for row in cursor:
        item = dict(zip(names, row, strict=True))
        item["due_date"] = decode("due_date", item["due_date"])
        item["is_closed"] = decode("is_closed", item["is_closed"])
        out.append(item)
    return out
