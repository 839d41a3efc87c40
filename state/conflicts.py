"""Conflicts: values in crmsync's fields that are not crmsync's, from first seen to resolved.

One row per (crm, object, record id, field). A run records every conflict its
plan found (sync/conflicts.py decides what is new and who set the value):

    (none) --seen--> open --the CRM holds what crmsync wants, or crmsync wrote it--> resolved
                      |  ^                                                              |
                      |  +----------------------------- seen again ---------------------+
                      +--`crmsync conflicts handback`--> open, handed back (the next run writes)

`wanted`, `held` and `last_written` are JSON values (what crmsync wants, what
the CRM holds, what crmsync last wrote there if the mirror knows); `who` is a
state.model.ChangeKind value. Values are shown by `crmsync status` and
`crmsync conflicts`, never logged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from crmsync.state.db import decode_datetime, dumps, encode_datetime, loads, now_utc, transaction

Key = tuple[str, str, str]  # (object, record id, field) within one CRM

_COLUMNS = (
    "crm", "object", "record_id", "field", "account_id", "label", "wanted", "held",
    "last_written", "after_write", "who", "who_user", "who_name", "changed_at",
    "first_seen", "last_seen", "resolved_at", "handed_back_at",
)  # fmt: skip


@dataclass(frozen=True)
class ConflictRow:
    crm: str
    object: str  # "accounts" | "contacts" | "tasks"
    record_id: str
    field: str
    account_id: str | None
    label: str | None
    wanted: Any
    held: Any
    last_written: Any = None
    after_write: bool = False  # the CRM's value replaced one crmsync wrote (a revert or an edit)
    who: str | None = None  # state.model.ChangeKind value
    who_user: str | None = None
    who_name: str | None = None
    changed_at: datetime | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    resolved_at: datetime | None = None
    handed_back_at: datetime | None = None

    @property
    def key(self) -> Key:
        return (self.object, self.record_id, self.field)


def _row(values: Sequence[Any]) -> ConflictRow:
    d = dict(zip(_COLUMNS, values, strict=True))
    for name in ("wanted", "held", "last_written"):
        d[name] = loads(d[name])
    for name in ("changed_at", "first_seen", "last_seen", "resolved_at", "handed_back_at"):
        d[name] = decode_datetime(d[name])
    d["after_write"] = bool(d["after_write"])
    return ConflictRow(**d)


def open_conflicts(db: sqlite_utils.Database, crm: str | None = None) -> list[ConflictRow]:
    """Open conflicts (of one CRM, or all), oldest first."""
    sql = f"SELECT {', '.join(_COLUMNS)} FROM conflicts WHERE resolved_at IS NULL"
    params: list[Any] = []
    if crm is not None:
        sql += " AND crm = ?"
        params.append(crm)
    sql += " ORDER BY crm, first_seen, object, record_id, field"
    return [_row(r) for r in db.conn.execute(sql, params)]


def save(db: sqlite_utils.Database, rows: Iterable[ConflictRow]) -> None:
    """Insert or replace these conflicts as given (open; the caller keeps first_seen)."""
    values = [
        (
            r.crm, r.object, r.record_id, r.field, r.account_id, r.label, dumps(r.wanted),
            dumps(r.held), dumps(r.last_written), int(r.after_write), r.who, r.who_user,
            r.who_name, encode_datetime(r.changed_at), encode_datetime(r.first_seen or now_utc()),
            encode_datetime(r.last_seen or now_utc()), None, encode_datetime(r.handed_back_at),
        )
        for r in rows
    ]  # fmt: skip
    if not values:
        return
    marks = ", ".join("?" * len(_COLUMNS))
    updates = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[4:])
    with transaction(db):
        db.conn.executemany(
            f"INSERT INTO conflicts ({', '.join(_COLUMNS)}) VALUES ({marks})"
            f" ON CONFLICT (crm, object, record_id, field) DO UPDATE SET {updates}",
            values,
        )


def resolve(db: sqlite_utils.Database, crm: str, keys: Iterable[Key], at: datetime) -> int:
    """Mark these open conflicts resolved; return how many."""
    keys = list(keys)
    if not keys:
        return 0
    with transaction(db):
        cursor = db.conn.execute(
            "UPDATE conflicts SET resolved_at = ? WHERE crm = ? AND resolved_at IS NULL"
            " AND (object, record_id, field) IN (SELECT json_extract(value, '$[0]'),"
            " json_extract(value, '$[1]'), json_extract(value, '$[2]') FROM json_each(?))",
            [encode_datetime(at), crm, dumps([list(k) for k in keys])],
        )
    return cursor.rowcount


def resolve_written(db: sqlite_utils.Database, crm: str, at: datetime) -> int:
    """Resolve handed-back conflicts whose field crmsync has written since the handback."""
    with transaction(db):
        cursor = db.conn.execute(
            "UPDATE conflicts SET resolved_at = ? WHERE crm = ? AND resolved_at IS NULL"
            " AND handed_back_at IS NOT NULL AND EXISTS (SELECT 1 FROM written w"
            " WHERE w.crm = conflicts.crm AND w.object = conflicts.object"
            " AND w.id = conflicts.record_id AND w.field = conflicts.field"
            " AND w.written_at >= conflicts.handed_back_at)",
            [encode_datetime(at), crm],
        )
    return cursor.rowcount


def handed_back(db: sqlite_utils.Database, crm: str) -> dict[tuple[str, str], set[str]]:
    """{(object, record id): fields} of open conflicts handed back to crmsync."""
    out: dict[tuple[str, str], set[str]] = {}
    rows = db.conn.execute(
        "SELECT object, record_id, field FROM conflicts WHERE crm = ? AND resolved_at IS NULL"
        " AND handed_back_at IS NOT NULL",
        [crm],
    )
    for obj, record_id, name in rows:
        out.setdefault((obj, record_id), set()).add(name)
    return out


def hand_back(
    db: sqlite_utils.Database,
    crm: str,
    *,
    record_id: str | None = None,
    fields: Sequence[str] | None = None,
    at: datetime | None = None,
) -> list[ConflictRow]:
    """Hand open conflicts back to crmsync (one record's, some of its fields, or all of a
    CRM's); return the rows handed back. The next run writes crmsync's value there."""
    where = ["crm = ?", "resolved_at IS NULL"]
    params: list[Any] = [crm]
    if record_id is not None:
        where.append("record_id = ?")
        params.append(record_id)
    if fields is not None:
        where.append("field IN (SELECT value FROM json_each(?))")
        params.append(dumps(sorted(set(fields))))
    condition = " AND ".join(where)
    with transaction(db):
        rows = [
            _row(r)
            for r in db.conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM conflicts WHERE {condition}", params
            )
        ]
        db.conn.execute(
            f"UPDATE conflicts SET handed_back_at = coalesce(handed_back_at, ?) WHERE {condition}",
            [encode_datetime(at or now_utc()), *params],
        )
    return rows


def counts(db: sqlite_utils.Database) -> dict[str, dict[str, int]]:
    """Per CRM: open conflicts, how many of them are handed back, and open ones by who."""
    out: dict[str, dict[str, int]] = {}
    rows = db.conn.execute(
        "SELECT crm, coalesce(who, 'unknown'), handed_back_at IS NOT NULL, count(*) FROM conflicts"
        " WHERE resolved_at IS NULL GROUP BY 1, 2, 3"
    )
    for crm, who, back, n in rows:
        c = out.setdefault(crm, {"open": 0, "handed_back": 0})
        c["open"] += n
        if back:
            c["handed_back"] += n
        c[f"by_{who}"] = c.get(f"by_{who}", 0) + n
    return out


def as_dict(row: ConflictRow) -> Mapping[str, Any]:
    """A row for JSON output."""
    return {
        "crm": row.crm, "object": row.object, "record_id": row.record_id, "field": row.field,
        "account_id": row.account_id, "label": row.label, "wanted": row.wanted,
        "held": row.held, "last_written": row.last_written, "after_write": row.after_write,
        "who": row.who, "who_user": row.who_user, "who_name": row.who_name,
        "changed_at": row.changed_at, "since": row.first_seen, "last_seen": row.last_seen,
        "handed_back_at": row.handed_back_at,
    }  # fmt: skip
