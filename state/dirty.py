"""Which accounts a run evaluates: the ones a write touched, and the ones whose day came.

The rules read an account's view (state/views.py), the settings and the run's day
(`as_of`, in UTC days), nothing else; the planner also reads what the CRM holds of
crmsync's fields and tasks. So an account's results can change only when

- something its view or its plan reads was written: triggers on the mirror's tables
  (state/migrations.py m010) put the account into `dirty_accounts`, whichever code path
  wrote (a pull's page, a tombstone, a merge, a reconcile, a cascade, a write landing);
- its day came: after each evaluation the account's next due day (the first day a
  time window of a rule can flip one of its findings; rules/due.py) is kept in
  `account_state`;
- or what every account reads changed: the settings and the owner who gets the tasks
  of accounts without an active owner (the fingerprint), the schema (a migration), or
  the clock going back. Then, as on `sync --full`, every account is evaluated.

`scope` says which (None: all); `begin`, `add` and `finish` store what an evaluation
found, in the run's transaction. Previews store nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

import sqlite_utils

from crmsync.state.db import dumps, encode_datetime
from crmsync.state.migrations import schema_version

# Above this share of the live accounts, evaluating everything is cheaper than
# evaluating a list of them (the views read the whole mirror in order).
FULL_SHARE = 0.3


@dataclass(frozen=True)
class Scope:
    """The accounts to evaluate (None: every account) and why."""

    account_ids: tuple[str, ...] | None
    reason: str  # "full", "settings", "schema", "clock", "first", "many", "changed", "preview"
    dirty: int = 0  # accounts a write touched
    due: int = 0  # accounts whose due day came


def day(as_of: datetime) -> date:
    return as_of.astimezone(UTC).date()


def scope(
    db: sqlite_utils.Database, crm: str, fingerprint: str, as_of: datetime, *, full: bool = False
) -> Scope:
    """The accounts of `crm` a run as of `as_of` must evaluate (see the module docstring)."""
    row = db.conn.execute(
        "SELECT fingerprint, as_of, schema_version FROM evaluation_state WHERE crm = ?", [crm]
    ).fetchone()
    if full:
        return Scope(None, "full")
    if row is None:
        return Scope(None, "first")
    stored_fingerprint, stored_as_of, stored_schema = row
    if stored_fingerprint != fingerprint:
        return Scope(None, "settings")
    if stored_schema != schema_version(db):
        return Scope(None, "schema")
    if (encode_datetime(as_of) or "") < stored_as_of:
        return Scope(None, "clock")
    dirty = {a for (a,) in db.conn.execute(
        "SELECT DISTINCT account_id FROM dirty_accounts WHERE crm = ?", [crm]
    )}  # fmt: skip
    due = {a for (a,) in db.conn.execute(
        "SELECT account_id FROM account_state WHERE crm = ? AND due IS NOT NULL AND due <= ?",
        [crm, day(as_of).isoformat()],
    )}  # fmt: skip
    ids = dirty | due
    (live,) = db.conn.execute("SELECT count(*) FROM account_state WHERE crm = ?", [crm]).fetchone()
    if len(ids) > FULL_SHARE * max(live, 1) and len(ids) > 1000:
        return Scope(None, "many", len(dirty), len(due))
    return Scope(tuple(sorted(ids)), "changed", len(dirty), len(due))


@dataclass(frozen=True)
class Evaluated:
    """What one evaluation of one live account leaves for the next run."""

    due: date | None  # the first day its results can change with no write
    coverage: str | None  # its coverage status (the org's totals are read from these)


def begin(db: sqlite_utils.Database, crm: str, scope: Scope) -> None:
    """Forget the due days of the accounts an evaluation is about to evaluate, and take
    them out of the dirty set; in the evaluation's transaction (so a write the views
    did not see cannot be lost: a run evaluates inside one transaction after its pull)."""
    conn = db.conn
    if scope.account_ids is None:
        conn.execute("DELETE FROM account_state WHERE crm = ?", [crm])
        conn.execute("DELETE FROM dirty_accounts WHERE crm = ?", [crm])
        return
    ids = dumps(list(scope.account_ids))
    for table in ("account_state", "dirty_accounts"):
        conn.execute(
            f"DELETE FROM {table} WHERE crm = ? AND account_id IN (SELECT value FROM json_each(?))",
            [crm, ids],
        )


def add(db: sqlite_utils.Database, crm: str, evaluated: Mapping[str, Evaluated]) -> None:
    """Store a chunk of evaluated live accounts' due days and coverage."""
    db.conn.executemany(
        "INSERT OR REPLACE INTO account_state (crm, account_id, due, coverage) VALUES (?, ?, ?, ?)",
        (
            (crm, account_id, e.due.isoformat() if e.due else None, e.coverage)
            for account_id, e in evaluated.items()
        ),
    )


def finish(
    db: sqlite_utils.Database,
    crm: str,
    *,
    fingerprint: str,
    as_of: datetime,
    evaluated_at: datetime,
) -> None:
    """Stamp what the evaluation ran with (the next run compares)."""
    db.conn.execute(
        "INSERT INTO evaluation_state (crm, fingerprint, as_of, schema_version, evaluated_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (crm) DO UPDATE SET fingerprint = excluded.fingerprint,"
        " as_of = excluded.as_of, schema_version = excluded.schema_version,"
        " evaluated_at = excluded.evaluated_at",
        [
            crm,
            fingerprint,
            encode_datetime(as_of),
            schema_version(db),
            encode_datetime(evaluated_at),
        ],
    )


def touch(db: sqlite_utils.Database, crm: str, account_ids: Iterable[str]) -> None:
    """Evaluate these accounts again next run (e.g. task creates held by the per-owner cap);
    an account listed already is not listed twice."""
    db.conn.executemany(
        "INSERT INTO dirty_accounts (crm, account_id) SELECT :crm, :id WHERE NOT EXISTS"
        " (SELECT 1 FROM dirty_accounts WHERE crm = :crm AND account_id = :id)",
        ({"crm": crm, "id": a} for a in account_ids),
    )


def coverage_totals(db: sqlite_utils.Database, crm: str) -> tuple[int, Counter[str]]:
    """(live accounts evaluated, accounts by coverage status) of the whole CRM."""
    total, out = 0, Counter[str]()
    for status, n in db.conn.execute(
        "SELECT coverage, count(*) FROM account_state WHERE crm = ? GROUP BY coverage", [crm]
    ):
        total += n
        if status is not None:
            out[status] = n
    return total, out

