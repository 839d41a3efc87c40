"""Flags have a life: open when first seen, kept while seen again, resolved when gone.

A run reconciles what the rules found for one CRM with the stored flags by key
(`Flag.key`: rule, crm, account, subject; never a timestamp), chunk by chunk of
accounts (`FlagRun`: `stage` each chunk's flags, then `finish`), in the caller's
transaction:

- not stored yet: opened (first_seen = last_seen = seen_at);
- stored open: kept (severity, confidence, explanation, evidence refreshed);
- stored resolved: re-opened (resolved_at cleared; first_seen kept);
- `flag.suppressed` (the account manager exempted it): stored as suppressed;
- stored open or suppressed, of a rule in `rules_run`, not found this run:
  resolved (resolved_at = seen_at), by one set-based UPDATE against the keys the
  run staged (a temporary table). Rules that did not run (failed, disabled)
  keep their flags as they are.

A flag found again with the same content and status is not written at all: a
steady run rewrites no row. Its last_seen is its rule's last run over the CRM
(`flag_rules`, stamped by `finish`), which is what `list_flags` reads for an
open or suppressed flag; a resolved flag keeps the last run that saw it.
Memory holds one chunk's flags, whatever the org's size; `FlagChanges` keeps
the keys only when asked (`sync_flags`, `preview_flags`), else the counts.

`sync_flags` is the same for one run's flags given at once (commits unless
nested). Without `store` (and `preview_flags`) nothing is written: what `crmsync
plan` and `sync --dry-run` show (a preview must leave the flags that `status`,
`flags` and `report` read exactly as they were; the staged keys live in a
temporary table, which is no part of the mirror).

Explanations and evidence are personal data shown to account managers; they
are stored, never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

import sqlite_utils

from crmsync.state.db import (
    decode_datetime,
    dumps,
    encode_datetime,
    join_transaction,
    loads,
    transaction,
)
from crmsync.state.model import Flag, FlagStatus

log = logging.getLogger(__name__)

_COLUMNS = (
    "key", "rule", "crm", "account_id", "contact_id", "subject_id", "severity", "confidence",
    "evidence", "explanation", "status", "first_seen", "last_seen", "resolved_at",
)  # fmt: skip
# What a run compares with the stored row: equal means the flag is not written.
_CONTENT = ("status", "severity", "confidence", "evidence", "explanation", "contact_id")
_content_of_row = itemgetter(*(_COLUMNS.index(c) for c in _CONTENT))  # a _row's _CONTENT
_KINDS = ("opened", "kept", "resolved", "suppressed")
_LIVE = (str(FlagStatus.OPEN), str(FlagStatus.SUPPRESSED))


@dataclass
class FlagChanges:
    """What one run changed (or, previewed, would change): counts, and the keys when kept."""

    opened: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)
    keep_keys: bool = True
    written: int = 0  # flag rows inserted or updated (a flag found again unchanged: none)
    _n: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_KINDS, 0))

    def add(self, kind: str, keys: list[str], n: int | None = None) -> None:
        self._n[kind] += len(keys) if n is None else n
        if self.keep_keys:
            getattr(self, kind).extend(keys)

    @property
    def counts(self) -> dict[str, int]:
        return dict(self._n)


class FlagRun:
    """One run's flags for one CRM, staged a chunk of accounts at a time.

    `store=False` writes nothing to the mirror (a preview): the changes are
    counted the same way. With `store`, writes join the caller's transaction
    (opened if there is none; the caller commits).
    """

    def __init__(
        self,
        db: sqlite_utils.Database,
        crm: str,
        *,
        seen_at: datetime | None,
        rules_run: set[str],
        store: bool = True,
        keep_keys: bool = False,
        accounts: Iterable[str] | None = None,
    ) -> None:
        """`accounts`: the accounts this run evaluates (None: all of `crm`'s); `finish`
        resolves only their flags (state/dirty.py: a run evaluates what changed)."""
        self.db, self.crm, self.store = db, crm, store
        self.scoped = accounts is not None
        self.rules_run = set(rules_run)
        self.seen = encode_datetime(seen_at)
        self.changes = FlagChanges(keep_keys=keep_keys)
        if store:
            join_transaction(db)
        db.conn.execute("CREATE TEMP TABLE IF NOT EXISTS flags_staged (key TEXT PRIMARY KEY)")
        db.conn.execute("DELETE FROM temp.flags_staged")
        if accounts is not None:
            db.conn.execute("CREATE TEMP TABLE IF NOT EXISTS flags_scope (id TEXT PRIMARY KEY)")
            db.conn.execute("DELETE FROM temp.flags_scope")
            db.conn.executemany(
                "INSERT OR IGNORE INTO temp.flags_scope (id) VALUES (?)", ((a,) for a in accounts)
            )

    def stage(self, flags: Iterable[Flag]) -> None:
        """Reconcile these flags (a chunk of accounts' findings) with the stored ones."""
        incoming = _incoming(self.crm, flags, self.rules_run)
        if not incoming:
            return
        keys = sorted(incoming)
        stored = {
            row[0]: row[1:]
            for row in self.db.conn.execute(
                f"SELECT key, {', '.join(_CONTENT)} FROM flags"
                " WHERE key IN (SELECT value FROM json_each(?))",
                [dumps(keys)],
            )
        }
        kinds: dict[str, list[str]] = {k: [] for k in _KINDS}
        rows = []
        for key in keys:
            flag = incoming[key]
            status = FlagStatus.SUPPRESSED if flag.suppressed else FlagStatus.OPEN
            old = stored.get(key)
            if flag.suppressed:
                kinds["suppressed"].append(key)
            elif old is not None and old[0] == FlagStatus.OPEN:
                kinds["kept"].append(key)
            else:
                kinds["opened"].append(key)
            row = _row(flag, status, self.seen)
            if old is None or tuple(old) != _content_of_row(row):
                rows.append(row)
        for kind, found in kinds.items():
            self.changes.add(kind, found)
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO temp.flags_staged (key) VALUES (?)", [(k,) for k in keys]
        )
        if self.store and rows:
            self.db.conn.executemany(
                f"INSERT INTO flags ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
                " ON CONFLICT (key) DO UPDATE SET severity = excluded.severity,"
                " confidence = excluded.confidence, evidence = excluded.evidence,"
                " explanation = excluded.explanation, contact_id = excluded.contact_id,"
                " status = excluded.status, last_seen = excluded.last_seen, resolved_at = NULL",
                rows,
            )
            self.changes.written += len(rows)

    def finish(self) -> FlagChanges:
        """Resolve the stored flags of the rules run that no chunk found; stamp the rules."""
        gone = (
            " FROM flags WHERE crm = :crm AND rule IN (SELECT value FROM json_each(:rules))"
            " AND status IN (SELECT value FROM json_each(:live))"
            " AND key NOT IN (SELECT key FROM temp.flags_staged)"
        )
        if self.scoped:
            gone += " AND account_id IN (SELECT id FROM temp.flags_scope)"
        params = {"crm": self.crm, "rules": dumps(sorted(self.rules_run)), "live": dumps(_LIVE)}
        conn = self.db.conn
        keys: list[str] = []
        if self.changes.keep_keys:
            keys = [k for (k,) in conn.execute(f"SELECT key{gone} ORDER BY key", params)]
        if not self.store:
            n = (
                len(keys)
                if self.changes.keep_keys
                else conn.execute(f"SELECT count(*){gone}", params).fetchone()[0]
            )
        else:
            # A flag found unchanged was not rewritten: its last_seen is its rule's last run.
            n = conn.execute(
                "UPDATE flags SET status = 'resolved', resolved_at = :seen,"
                " last_seen = coalesce((SELECT r.seen_at FROM flag_rules r"
                " WHERE r.crm = flags.crm AND r.rule = flags.rule), last_seen)"
                f" WHERE rowid IN (SELECT rowid{gone})",
                {**params, "seen": self.seen},
            ).rowcount
            conn.executemany(
                "INSERT INTO flag_rules (crm, rule, seen_at) VALUES (?, ?, ?)"
                " ON CONFLICT (crm, rule) DO UPDATE SET seen_at = excluded.seen_at",
                [(self.crm, rule, self.seen) for rule in sorted(self.rules_run)],
            )
            self.changes.written += n
        self.changes.add("resolved", keys, n)
        if self.changes.keep_keys:  # in key order, whatever the chunks were
            for kind in _KINDS:
                getattr(self.changes, kind).sort()
        conn.execute("DELETE FROM temp.flags_staged")
        if self.scoped:
            conn.execute("DELETE FROM temp.flags_scope")
        if self.store:
            log.info("flags synced", extra={"crm": self.crm, **self.changes.counts})
        return self.changes


def sync_flags(
    db: sqlite_utils.Database,
    crm: str,
    flags: Iterable[Flag],
    *,
    seen_at: datetime,
    rules_run: set[str],
) -> FlagChanges:
    """Reconcile one run's flags for `crm` with the stored ones; commits unless nested."""
    incoming = _incoming(crm, flags, rules_run)
    with transaction(db):
        run = FlagRun(db, crm, seen_at=seen_at, rules_run=rules_run, keep_keys=True)
        run.stage(incoming.values())
        return run.finish()


def preview_flags(
    db: sqlite_utils.Database, crm: str, flags: Iterable[Flag], *, rules_run: set[str]
) -> FlagChanges:
    """What `sync_flags` would change, without changing anything (`plan`, `sync --dry-run`)."""
    incoming = _incoming(crm, flags, rules_run)
    run = FlagRun(db, crm, seen_at=None, rules_run=rules_run, store=False, keep_keys=True)
    run.stage(incoming.values())
    return run.finish()


def _incoming(crm: str, flags: Iterable[Flag], rules_run: set[str]) -> dict[str, Flag]:
    incoming: dict[str, Flag] = {}
    for flag in flags:
        if flag.crm != crm:
            raise ValueError(f"flag {flag.key} is for {flag.crm}, not {crm}")
        if flag.rule not in rules_run:
            raise ValueError(f"flag {flag.key} comes from rule {flag.rule!r}, not in rules_run")
        incoming[flag.key] = flag
    return incoming


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
            where.append(f"f.{column} = ?")
            params.append(str(value))
    # An open or suppressed flag was last seen by its rule's last run (FlagRun.finish).
    columns = [f"f.{c}" for c in _COLUMNS]
    columns[_COLUMNS.index("last_seen")] = (
        f"CASE WHEN f.status IN ('{_LIVE[0]}', '{_LIVE[1]}') "
        "THEN coalesce(r.seen_at, f.last_seen) ELSE f.last_seen END"
    )
    sql = (
        f"SELECT {', '.join(columns)} FROM flags f"
        " LEFT JOIN flag_rules r ON r.crm = f.crm AND r.rule = f.rule"
    )
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY f.crm, f.account_id, f.rule, f.subject_id"
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
