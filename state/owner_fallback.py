"""Accounts whose tasks go to the fallback owner, remembered so a change is warned once.

An account without an active owner has its tasks assigned to `[writeback]
default_owner`, or, when that is unset, to the active owner with the most accounts
(sync/owners.py). The planner warns about those accounts. Warning at every run
would repeat the same line in an ops engineer's log every few minutes, so a stored
run remembers each account and the owner its tasks went to (`note`), and the warning
names only the accounts that are new to that list or whose fallback owner changed
(`new`). An account the run planned that no longer goes to the fallback leaves the
list, so it is warned about again if it loses its owner again. `crmsync status`
keeps showing how many open tasks such accounts have.

    new(db, "hubspot", "42", {"001A", "001B"}) -> ["001B"]   # 001A was noted for 42
    note(db, "hubspot", "42", {"001A", "001B"}, planned=["001A", "001B", "001C"])
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import sqlite_utils

from crmsync.state.db import dumps, transaction


def new(db: sqlite_utils.Database, crm: str, owner_id: str | None,
        accounts: Collection[str]) -> list[str]:  # fmt: skip
    """The `accounts` (whose tasks go to `owner_id`) not yet noted as going to it, sorted."""
    if not accounts:
        return []
    noted = set(
        db.conn.execute(
            "SELECT account_id FROM owner_fallbacks WHERE crm = ? AND owner_id = ?"
            " AND account_id IN (SELECT value FROM json_each(?))",
            [crm, owner_id or "", dumps(sorted(accounts))],
        ).fetchall()
    )
    return sorted(a for a in accounts if (a,) not in noted)


def note(
    db: sqlite_utils.Database,
    crm: str,
    owner_id: str | None,
    accounts: Collection[str],
    *,
    planned: Iterable[str] | None,
) -> None:
    """Remember that the tasks of `accounts` go to `owner_id`, and that the other accounts
    in `planned` (None: every account of `crm`) do not go to the fallback any more."""
    with transaction(db):
        if planned is None:
            db.conn.execute(
                "DELETE FROM owner_fallbacks WHERE crm = ?"
                " AND account_id NOT IN (SELECT value FROM json_each(?))",
                [crm, dumps(sorted(accounts))],
            )
        else:
            gone = sorted(set(planned) - set(accounts))
            if gone:
                db.conn.execute(
                    "DELETE FROM owner_fallbacks WHERE crm = ?"
                    " AND account_id IN (SELECT value FROM json_each(?))",
                    [crm, dumps(gone)],
                )
        db.conn.executemany(
            "INSERT INTO owner_fallbacks (crm, account_id, owner_id) VALUES (?, ?, ?)"
            " ON CONFLICT (crm, account_id) DO UPDATE SET owner_id = excluded.owner_id",
            [(crm, a, owner_id or "") for a in sorted(accounts)],
        )
