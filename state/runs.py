"""Run history: what each sync did, how it ended, and the API calls it cost.

`start` writes a row (and commits) before the run touches a CRM, `finish`
completes it. A row left without `finished_at` is a run that died (SIGKILL,
power loss); the next run calls `close_interrupted` under the writer lock to
record it as "interrupted". `crmsync status` reads `last_runs` and
`api_calls_since`.

A preview (`crmsync plan`, `sync --dry-run`) records nothing here: /healthz,
/metrics and `crmsync status` count real runs only.

Outcomes: ok; partial (finished, but the CRM rejected rows, or dead rows held
planned writes back: exit 1); failed (also: crmsync's fields missing, exit 3);
quota_exhausted (stopped cleanly at the API budget, resumable); interrupted.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlite_utils

from crmsync.state.db import decode_datetime, dumps, encode_datetime, loads, transaction


class RunOutcome(StrEnum):
    OK = "ok"
    PARTIAL = "partial"
    FAILED = "failed"
    QUOTA_EXHAUSTED = "quota_exhausted"
    INTERRUPTED = "interrupted"


def start(db: sqlite_utils.Database, crm: str | None, mode: str, started_at: datetime) -> int:
    """Record a run's start; return its id. Commits unless nested."""
    with transaction(db):
        cursor = db.conn.execute(
            "INSERT INTO runs (crm, mode, started_at) VALUES (?, ?, ?)",
            [crm, mode, encode_datetime(started_at)],
        )
    return int(cursor.lastrowid or 0)


def finish(
    db: sqlite_utils.Database,
    run_id: int,
    outcome: RunOutcome | str,
    finished_at: datetime,
    counts: Mapping[str, Any] | None = None,
    api_calls: int = 0,
    api_by_operation: Mapping[str, int] | None = None,
    quota: tuple[int | None, int | None] | None = None,
    error: str | None = None,
    as_of: datetime | None = None,
) -> None:
    """Complete a run. `quota` is (used, limit) as the CRM last reported it; `as_of` is the
    time its rules were evaluated as of (None when the run evaluated nothing)."""
    outcome = RunOutcome(outcome)
    used, limit = quota if quota is not None else (None, None)
    with transaction(db):
        cursor = db.conn.execute(
            "UPDATE runs SET finished_at = ?, outcome = ?, error = ?, counts = ?, api_calls = ?,"
            " api_by_operation = ?, quota_used = ?, quota_limit = ?, as_of = ? WHERE id = ?",
            [
                encode_datetime(finished_at),
                outcome.value,
                error,
                dumps(dict(counts or {})),
                int(api_calls),
                dumps(dict(api_by_operation or {})),
                used,
                limit,
                encode_datetime(as_of),
                run_id,
            ],
        )
        if cursor.rowcount != 1:
            raise KeyError(f"no run with id {run_id}")


def close_interrupted(db: sqlite_utils.Database, finished_at: datetime) -> int:
    """Record runs that never finished as interrupted; return how many.

    Call only while holding the writer lock (state/lock.py): then no other run
    is in progress, and an unfinished row can only be a dead run.
    """
    with transaction(db):
        cursor = db.conn.execute(
            "UPDATE runs SET outcome = 'interrupted', finished_at = ?,"
            " error = coalesce(error, 'the process stopped before the run finished')"
            " WHERE finished_at IS NULL",
            [encode_datetime(finished_at)],
        )
    return cursor.rowcount


def last_runs(
    db: sqlite_utils.Database, limit: int = 10, *, crm: str | None = None
) -> list[dict[str, Any]]:
    """Newest first; JSON columns parsed, times as datetimes; outcome None = running."""
    sql = "SELECT * FROM runs"
    params: list[Any] = []
    if crm is not None:
        sql += " WHERE crm = ?"
        params.append(crm)
    sql += " ORDER BY started_at DESC, id DESC LIMIT ?"
    params.append(int(limit))
    cursor = db.conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    out = []
    for row in cursor:
        run = dict(zip(names, row, strict=True))
        run["counts"] = loads(run["counts"]) or {}
        run["api_by_operation"] = loads(run["api_by_operation"]) or {}
        run["started_at"] = decode_datetime(run["started_at"])
        run["finished_at"] = decode_datetime(run["finished_at"])
        run["as_of"] = decode_datetime(run.get("as_of"))
        out.append(run)
    return out


def api_calls_since(db: sqlite_utils.Database, crm: str, since: datetime) -> int:
    """API calls spent by runs of `crm` started at or after `since`."""
    row = db.conn.execute(
        "SELECT coalesce(sum(api_calls), 0) FROM runs WHERE crm = ? AND started_at >= ?",
        [crm, encode_datetime(since)],
    ).fetchone()
    return int(row[0])


# Runs whose rules were evaluated and stored: they recorded coverage counts. (A run
# that failed after evaluating keeps its counts too: its flags were stored.)
_EVALUATED = "json_extract(counts, '$.coverage') IS NOT NULL AND outcome IS NOT NULL"


def evaluated(db: sqlite_utils.Database, limit: int = 60) -> list[dict[str, Any]]:
    """The last `limit` runs that evaluated the rules, oldest first: id, crm, started_at,
    as_of (None for runs recorded before crmsync kept it), coverage {status: n} and
    flags {rule: open n}."""
    cursor = db.conn.execute(
        "SELECT id, crm, started_at, as_of, json_extract(counts, '$.coverage'),"
        f" json_extract(counts, '$.flags') FROM runs WHERE {_EVALUATED}"
        " ORDER BY started_at DESC, id DESC LIMIT ?",
        [int(limit)],
    )
    out = [
        {
            "id": rid,
            "crm": crm,
            "started_at": decode_datetime(started),
            "as_of": decode_datetime(as_of),
            "coverage": loads(coverage) or {},
            "flags": loads(flags) or {},
        }
        for rid, crm, started, as_of, coverage, flags in cursor
    ]
    return out[::-1]


def last_evaluation(db: sqlite_utils.Database, crm: str) -> dict[str, Any] | None:
    """The newest run of `crm` that evaluated the rules (see `evaluated`), or None."""
    row = db.conn.execute(
        f"SELECT id, started_at, as_of FROM runs WHERE crm = ? AND {_EVALUATED}"
        " ORDER BY started_at DESC, id DESC LIMIT 1",
        [crm],
    ).fetchone()
    if row is None:
        return None
    rid, started, as_of = row
    return {"id": rid, "crm": crm, "started_at": decode_datetime(started), "as_of": decode_datetime(as_of)}
