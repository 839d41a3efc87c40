"""Flags have a life: open when first seen, kept while seen again, resolved when gone.

`sync_flags` takes everything the rules found in one run for one CRM and
reconciles it with the stored flags by key (`Flag.key`: rule, crm, account,
subject; never a timestamp), in one transaction:

- not stored yet: opened (first_seen = last_seen = seen_at);
- stored open: kept (last_seen, severity, explanation, evidence refreshed);
- stored resolved: re-opened (resolved_at cleared; first_seen kept);
- `flag.suppressed` (the account manager exempted it): stored as suppressed;
- stored open or suppressed, of a rule in `rules_run`, not found this run:
  resolved (resolved_at = seen_at). Rules that did not run (failed, disabled)
  keep their flags as they are.

`preview_flags` answers the same question without writing anything: what
`crmsync plan` and `sync --dry-run` show (a preview must leave the flags that
`status`, `flags` and `report` read exactly as they were).

Explanations and evidence are personal data shown to account managers; they
are stored, never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlite_utils

from crmsync.state.db import decode_datetime, dumps, encode_datetime, loads, transaction
from crmsync.state.model import Flag, FlagStatus

log = logging.getLogger(__name__)

_COLUMNS = (
    "key", "rule", "crm", "account_id", "contact_id", "subject_id", "severity", "confidence",
    "evidence", "explanation", "status", "first_seen", "last_seen", "resolved_at",
)  # fmt: skip


@dataclass
class FlagChanges:
    opened: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {
            "opened": len(self.opened),
            "kept": len(self.kept),
            "resolved": len(self.resolved),
            "suppressed": len(self.suppressed),
        }


def sync_flags(
    db: sqlite_utils.Database,
    crm: str,
    flags: Iterable[Flag],
    *,
    seen_at: datetime,
    rules_run: set[str],
) -> FlagChanges:
    """Reconcile one run's flags for `crm` with the stored ones; commits unless nested."""
    seen = encode_datetime(seen_at)
    incoming = _incoming(crm, flags, rules_run)
    with transaction(db):
        changes = _changes(_stored_status(db, crm, rules_run), incoming)
        rows = [
            _row(flag, FlagStatus.SUPPRESSED if flag.suppressed else FlagStatus.OPEN, seen)
            for _, flag in sorted(incoming.items())
        ]
        db.conn.executemany(
            f"INSERT INTO flags ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
            " ON CONFLICT (key) DO UPDATE SET severity = excluded.severity,"
            " confidence = excluded.confidence, evidence = excluded.evidence,"
            " explanation = excluded.explanation, contact_id = excluded.contact_id,"
            " status = excluded.status, last_seen = excluded.last_seen, resolved_at = NULL",
            rows,
        )
        db.conn.executemany(
            "UPDATE flags SET status = 'resolved', resolved_at = ? WHERE key = ?",
            [(seen, key) for key in changes.resolved],
        )
    log.info("flags synced", extra={"crm": crm, **changes.counts})
    return changes


def preview_flags(
    db: sqlite_utils.Database, crm: str, flags: Iterable[Flag], *, rules_run: set[str]
) -> FlagChanges:
    """What `sync_flags` would change, without changing anything (`plan`, `sync --dry-run`)."""
    incoming = _incoming(crm, flags, rules_run)
    return _changes(_stored_status(db, crm, rules_run), incoming)


def _incoming(crm: str, flags: Iterable[Flag], rules_run: set[str]) -> dict[str, Flag]:
    incoming: dict[str, Flag] = {}
    for flag in flags:
        if flag.crm != crm:
            raise ValueError(f"flag {flag.key} is for {flag.crm}, not {crm}")
        if flag.rule not in rules_run:
            raise ValueError(f"flag {flag.key} comes from rule {flag.rule!r}, not in rules_run")
        incoming[flag.key] = flag
    return incoming


def _changes(stored: dict[str, str], incoming: dict[str, Flag]) -> FlagChanges:
    """Opened, kept, suppressed and resolved keys of one run against the stored statuses."""
    changes = FlagChanges()
    for key in sorted(incoming):
        if incoming[key].suppressed:
            changes.suppressed.append(key)
        elif stored.get(key) == FlagStatus.OPEN:
            changes.kept.append(key)
        else:
            changes.opened.append(key)
    changes.resolved = sorted(
        key
        for key, status in stored.items()
        if key not in incoming and status in (FlagStatus.OPEN, FlagStatus.SUPPRESSED)
    )
    return changes


def _stored_status(db: sqlite_utils.Database, crm: str, rules: set[str]) -> dict[str, str]:
    return dict(
        db.conn.execute(
            "SELECT key, status FROM flags WHERE crm = ? "
            "AND rule IN (SELECT value FROM json_each(?))",
            [crm, dumps(sorted(rules))],
        ).fetchall()
    )


def _row(flag: Flag, status: FlagStatus, seen: str | None) -> tuple[Any, ...]:
    return (
        flag.key,
        flag.rule,
        flag.crm,
        flag.account_id,
        flag.contact_id,
        flag.subject_id,
        str(flag.severity),
        str(flag.confidence),
        dumps(dict(flag.evidence)),
        flag.explanation,
        str(status),
        seen,
        seen,
        None,
    )


def list_flags(
    db: sqlite_utils.Database,
    *,
    rule: str | None = None,
    account_id: str | None = None,
    status: str | None = None,
    crm: str | None = None,
) -> list[dict[str, Any]]:
    """Stored flags as dicts (evidence parsed, times as datetimes), in a stable order."""
    where, params = [], []
    for column, value in (("rule", rule), ("account_id", account_id), ("status", status),
                          ("crm", crm)):  # fmt: skip
        if value is not None:
            where.append(f"{column} = ?")
            params.append(str(value))
    sql = f"SELECT {', '.join(_COLUMNS)} FROM flags"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY crm, account_id, rule, subject_id"
    out = []
    for row in db.conn.execute(sql, params):
        item = dict(zip(_COLUMNS, row, strict=True))
        item["evidence"] = loads(item["evidence"]) or {}
        for column in ("first_seen", "last_seen", "resolved_at"):
            item[column] = decode_datetime(item[column])
        out.append(item)
    return out


def status_counts(db: sqlite_utils.Database, crm: str | None = None) -> dict[str, dict[str, int]]:
    """{rule: {status: n}} (of one CRM when `crm` is given) for `crmsync status` and /metrics."""
    out: dict[str, dict[str, int]] = {}
    where, params = ("WHERE crm = ? ", [crm]) if crm is not None else ("", [])
    for rule, status, n in db.conn.execute(
        f"SELECT rule, status, count(*) FROM flags {where}GROUP BY rule, status ORDER BY rule, status",
        params,
    ):
        out.setdefault(rule, {})[status] = n
    return out


def history(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every flag that is open or resolved (suppressed ones are left out), with when it was
    first seen and resolved: what the report's trend counts open findings from.

    A flag re-opened after a resolution keeps its first_seen and loses its resolved_at
    (see `sync_flags`), so between those runs it counts as open: the trend is an
    upper bound there."""
    cursor = db.conn.execute(
        "SELECT crm, account_id, rule, severity, first_seen, resolved_at FROM flags"
        " WHERE status IN ('open', 'resolved') ORDER BY crm, account_id, key"
    )
    return [
        {
            "crm": crm,
            "account_id": account_id,
            "rule": rule,
            "severity": severity,
            "first_seen": decode_datetime(first_seen),
            "resolved_at": decode_datetime(resolved_at),
        }
        for crm, account_id, rule, severity, first_seen, resolved_at in cursor
    ]
