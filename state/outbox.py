"""The outbox: every write crmsync intends, before it touches a CRM.

Life of a row (status):

    pending --claim--> inflight --mark ok--> done
       ^                  |
       |                  +--mark refused, transient--> failed --claim--> inflight
       |                  |                               +--give_up (max_attempts runs)--> dead
       |                  +--mark refused, permanent--> dead
       +--release (a stop: not sent, or outcome checked after a crash) / requeue (admin)

- `enqueue` keys each write with a stable idempotency key (derived from the
  flag or the record, never a time). A unique index keeps at most one
  not-done row per (crm, key): queueing the same write twice is a no-op, and
  a changed payload updates the queued row instead of adding one.
- `claim` marks a batch inflight and commits before the writer calls the
  CRM, so a crash leaves evidence: `inflight_unknown` lists rows whose
  outcome nobody recorded; the writer looks their keys up in the CRM (did the
  task get created?) and then marks them done or releases them.
- `mark` records the CRM's answer per row, in one transaction, together with
  the values crmsync wrote (`written`, for the ownership guard: a CRM value
  that differs from what we last wrote was edited by a human).
- `attempts` counts the runs that sent a row, never a stop: `mark` adds one
  when the CRM answered for it (a retry of a transient refusal within the
  same run is part of that run's attempt); a row released after a stop
  (quota, transport failure), or refused by crmsync before it reached the
  CRM (`WriteResult.sent` false), keeps its count.
- Retry or dead is decided here only (`status_after`, `give_up`): a
  permanent refusal is dead at once; a transient one (UNABLE_TO_LOCK_ROW,
  the connector's `retryable`) is retried by the drain with backoff within
  the run and becomes dead only when it is still refused after
  `max_attempts` runs.
- Dead and failed rows stay until someone acts: `rejected_summary` groups
  them by the CRM's error code for `crmsync status`, `requeue` gives them
  another chance (`crmsync outbox requeue`, and `crmsync setup` for rows that
  died for want of a field it created), `dead_keys` tells the planner which
  of its writes a dead row holds back.

Payload values must be JSON-serialisable; dates and datetimes are stored as
ISO text and come back as strings. Payloads and errors are never logged.
"""

from __future__ import annotations

import builtins
import logging
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlite_utils

from crmsync.state import writeback
from crmsync.state.db import decode_datetime, dumps, encode_datetime, loads, now_utc, transaction
from crmsync.state.model import CrmRecord, ObjectType, OutboxItem, Write, WriteKind, WriteResult

log = logging.getLogger(__name__)

STATUSES: tuple[str, ...] = ("pending", "inflight", "done", "failed", "dead")

# Which mirror object a write kind updates (for the `written` record).
KIND_OBJECT: Mapping[WriteKind, ObjectType] = {
    WriteKind.UPDATE_ACCOUNT: ObjectType.ACCOUNT,
    WriteKind.UPDATE_CONTACT: ObjectType.CONTACT,
    WriteKind.CREATE_TASK: ObjectType.TASK,
    WriteKind.UPDATE_TASK: ObjectType.TASK,
    WriteKind.COMPLETE_TASK: ObjectType.TASK,
}


# The order a drain sends the kinds in (`ready_ids`): fields first, task creates last.
KIND_ORDER: Mapping[WriteKind, int] = {
    WriteKind.UPDATE_ACCOUNT: 0,
    WriteKind.UPDATE_CONTACT: 1,
    WriteKind.UPDATE_TASK: 2,
    WriteKind.COMPLETE_TASK: 3,
    WriteKind.CREATE_TASK: 4,
}


# ---------------------------------------------------------------- enqueue


def enqueue(
    db: sqlite_utils.Database,
    crm: str,
    kind: WriteKind | str,
    key: str,
    target_id: str | None,
    payload: Mapping[str, Any],
    *,
    now: datetime | None = None,
) -> int | None:
    """Queue one write; return its row id, or None if the same write is already queued."""
    return enqueue_many(db, crm, [Write(WriteKind(kind), key, target_id, payload)], now=now)[0]


def enqueue_many(
    db: sqlite_utils.Database,
    crm: str,
    writes: Sequence[Write],
    *,
    now: datetime | None = None,
) -> list[int | None]:
    """Queue `crm`'s writes in one transaction; per write its row id, or None if nothing changed.

    Against the live (not done) row of the same (crm, key):
    - none: a new pending row;
    - pending or failed: payload, kind and target updated if they differ (id returned);
    - inflight: left alone (the writer owns it; the next plan sees the outcome) -> None;
    - dead with the same payload: left dead (no retry storm) -> None;
      with a different payload: revived as pending with attempts reset.
    """
    stamp = encode_datetime(now or now_utc())
    out: list[int | None] = []
    with transaction(db):
        live = _live_rows(db, crm, writes)
        for write in writes:
            payload = dumps(dict(write.payload))
            kind = str(WriteKind(write.kind))
            row = live.get((crm, write.key))
            if row is None:
                new_id = db.conn.execute(
                    "INSERT INTO outbox (crm, kind, key, target_id, payload, status, attempts,"
                    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
                    [crm, kind, write.key, write.target_id, payload, stamp, stamp],
                ).lastrowid
                live[(crm, write.key)] = (
                    new_id,
                    "pending",
                    kind,
                    write.target_id,
                    payload,
                )
                out.append(new_id)
                continue
            out.append(_requeue(db, row, kind, write.target_id, payload, stamp))
            row_id, status = row[0], row[1]
            if out[-1] is not None:
                new_status = "pending" if status == "dead" else status
                live[(crm, write.key)] = (row_id, new_status, kind, write.target_id,
                                                  payload)  # fmt: skip
    return out


def _live_rows(
    db: sqlite_utils.Database, crm: str, writes: Sequence[Write]
) -> dict[tuple[str, str], tuple[Any, ...]]:
    keys = dumps(sorted({w.key for w in writes}))
    rows = db.conn.execute(
        "SELECT o.key, o.id, o.status, o.kind, o.target_id, o.payload FROM outbox o"
        " WHERE o.crm = ? AND o.key IN (SELECT value FROM json_each(?)) AND o.status <> 'done'",
        [crm, keys],
    )
    return {(crm, r[0]): tuple(r[1:]) for r in rows}


def _requeue(
    db: sqlite_utils.Database,
    row: tuple[Any, ...],
    kind: str,
    target_id: str | None,
    payload: str,
    stamp: str | None,
) -> int | None:
    row_id, status, old_kind, old_target, old_payload = row
    same = (old_kind, old_target, old_payload) == (kind, target_id, payload)
    if status == "inflight" or same:
        return None
    if status == "dead":
        db.conn.execute(
            "UPDATE outbox SET kind = ?, target_id = ?, payload = ?, status = 'pending',"
            " attempts = 0, last_error_code = NULL, last_error = NULL, updated_at = ?"
            " WHERE id = ?",
            [kind, target_id, payload, stamp, row_id],
        )
    else:
        db.conn.execute(
            "UPDATE outbox SET kind = ?, target_id = ?, payload = ?, updated_at = ? WHERE id = ?",
            [kind, target_id, payload, stamp, row_id],
        )
    return int(row_id)


class StagedCreates:
    """A run's task creates, staged until the per-owner cap can rank them all (sync/plan.py).

    A temporary table (no part of the mirror; gone with the connection, and with the
    transaction of a preview): memory holds none of them. `add` each chunk's creates with
    their rank; `ranked` gives them back by (rank, key), the order the cap takes them in.
    """

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        db.conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS plan_creates (rank INTEGER NOT NULL, key TEXT"
            " NOT NULL, owner_id TEXT, account_id TEXT, label TEXT, payload TEXT,"
            " PRIMARY KEY (rank, key))"
        )
        db.conn.execute("DELETE FROM temp.plan_creates")

    def add(self, creates: Iterable[tuple[int, str, Write]]) -> None:
        rows = [
            (rank, key, w.owner_id, w.account_id, w.label, dumps(dict(w.payload)))
            for rank, key, w in creates
        ]
        self.db.conn.executemany(
            "INSERT OR REPLACE INTO temp.plan_creates (rank, key, owner_id, account_id, label,"
            " payload) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )

    def ranked(self) -> Iterator[Write]:
        rows = self.db.conn.execute(
            "SELECT key, owner_id, account_id, label, payload FROM temp.plan_creates"
            " ORDER BY rank, key"
        )
        for key, owner, account, label, payload in rows:
            yield Write(WriteKind.CREATE_TASK, key, None, loads(payload), {}, owner,
                        account or "", label or "")  # fmt: skip


# ---------------------------------------------------------------- claim and mark


def claim(
    db: sqlite_utils.Database,
    crm: str,
    limit: int,
    *,
    retry_failed: bool = True,
    ids: Iterable[int] | None = None,
    now: datetime | None = None,
) -> list[OutboxItem]:
    """Take up to `limit` pending (and, if `retry_failed`, failed) rows, oldest first.

    With `ids`, only those rows (pending or failed): the drain's retry of the
    rows a CRM refused for a moment. They become inflight (each item's
    `attempts` is the count so far; it grows only when the CRM answers, see
    `mark`); commits (unless nested) so a crash after the CRM call is
    detectable through `inflight_unknown`.
    """
    statuses = ("pending", "failed") if retry_failed or ids is not None else ("pending",)
    where = f"crm = ? AND status IN ({', '.join('?' * len(statuses))})"
    params: list[Any] = [crm, *statuses]
    if ids is not None:
        where += " AND id IN (SELECT value FROM json_each(?))"
        params.append(dumps(sorted(set(ids))))
    with transaction(db):
        rows = db.conn.execute(
            "SELECT id, crm, kind, key, target_id, payload, attempts FROM outbox"
            f" WHERE {where} ORDER BY id LIMIT ?",
            [*params, limit],
        ).fetchall()
        if rows:
            db.conn.execute(
                "UPDATE outbox SET status = 'inflight', updated_at = ?"
                " WHERE id IN (SELECT value FROM json_each(?))",
                [encode_datetime(now or now_utc()), dumps([r[0] for r in rows])],
            )
    return [_item(r) for r in rows]


def ready_ids(db: sqlite_utils.Database, crm: str) -> list[int]:
    """Ids of the rows a drain sends: pending, and failed (refused for a moment), a kind at
    a time in `KIND_ORDER`, oldest first within a kind. A run queues its writes a chunk of
    accounts at a time, kinds interleaved; sent in this order, a batch holds one kind (one
    CRM call, docs/budgets.md) and tasks are created after every field update."""
    order = " ".join(f"WHEN '{k.value}' THEN {n}" for k, n in KIND_ORDER.items())
    rows = db.conn.execute(
        "SELECT id FROM outbox WHERE crm = ? AND status IN ('pending', 'failed')"
        f" ORDER BY CASE kind {order} ELSE {len(KIND_ORDER)} END, id",
        [crm],
    )
    return [int(r[0]) for r in rows]


def _item(row: Sequence[Any]) -> OutboxItem:
    row_id, crm, kind, key, target_id, payload, attempts = row
    return OutboxItem(
        id=row_id,
        crm=crm,
        write=Write(WriteKind(kind), key, target_id, loads(payload)),
        attempts=attempts,
    )


def mark(
    db: sqlite_utils.Database,
    results: Iterable[WriteResult],
    *,
    max_attempts: int,
    counted: Collection[int] = (),
    now: datetime | None = None,
) -> dict[str, int]:
    """Record the CRM's answer per row; return how many rows went to each status.

    ok -> done (crm_id kept; payload recorded in `written`); refused -> the
    status `status_after` decides (failed: sent again later; dead: given up).
    Code and detail are kept on the row for `crmsync status`.

    A row's `attempts` counts the runs that sent it: an answer the CRM gave
    (`WriteResult.sent`) adds one, unless the row is in `counted` (the run
    already counted its attempt: a retry of a transient refusal in the same
    run). A row released after a stop, or refused by crmsync before it reached
    the CRM, keeps its count.
    """
    stamp = encode_datetime(now or now_utc())
    tally = {"done": 0, "failed": 0, "dead": 0, "unknown": 0}
    with transaction(db):
        for result in results:
            row = db.conn.execute(
                "SELECT crm, kind, target_id, payload, attempts FROM outbox"
                " WHERE id = ? AND status = 'inflight'",
                [result.item_id],
            ).fetchone()
            if row is None:
                # Not claimed (or already marked): a stale or duplicate answer.
                tally["unknown"] += 1
                log.warning("write result for no inflight row", extra={"item_id": result.item_id})
                continue
            crm, kind, target_id, payload, attempts = row
            add = int(result.sent and result.item_id not in counted)
            if result.ok:
                db.conn.execute(
                    "UPDATE outbox SET status = 'done', crm_id = coalesce(?, crm_id, target_id),"
                    " attempts = attempts + ?, last_error_code = NULL, last_error = NULL,"
                    " updated_at = ?, done_at = ? WHERE id = ?",
                    [result.crm_id, add, stamp, stamp, result.item_id],
                )
                record_id = result.crm_id or target_id
                if record_id:
                    _record(db, crm, KIND_OBJECT[WriteKind(kind)], record_id, loads(payload), stamp)
                tally["done"] += 1
                continue
            status = status_after(result)
            db.conn.execute(
                "UPDATE outbox SET status = ?, attempts = attempts + ?, last_error_code = ?,"
                " last_error = ?, updated_at = ? WHERE id = ?",
                [status, add, result.code, result.detail, stamp, result.item_id],
            )
            tally[status] += 1
            if status == "dead":
                log.warning(
                    "write given up",
                    extra={"crm": crm, "item_id": result.item_id, "code": result.code,
                           "attempts": attempts + add},
                )  # fmt: skip
    return tally


@dataclass(frozen=True)
class Rejection:
    """A row the CRM refused, as `crmsync status` and the run summary show it."""

    item_id: int
    kind: str
    key: str
    target_id: str | None
    code: str | None
    detail: str | None
    status: str  # "failed" (will be retried) | "dead" (given up)


@dataclass(frozen=True)
class Recorded:
    """What `record_results` made of a batch's answers."""

    landed: list[OutboxItem]  # done: the write is in the CRM (and reflected in the mirror)
    sent: list[int]  # rows the CRM answered for (their attempt is counted)
    rejections: list[Rejection]  # refused: failed (sent again) or dead


def record_results(
    db: sqlite_utils.Database,
    batch: Sequence[OutboxItem],
    results: Sequence[WriteResult],
    *,
    max_attempts: int,
    counted: Collection[int] = (),
    records: Mapping[int, CrmRecord] | None = None,
    now: datetime | None = None,
) -> Recorded:
    """Record the CRM's answers for a claimed batch, in one transaction.

    Each row is marked (`mark`: done, failed or dead, decided here only), and
    each landed write is reflected in the mirror (state/writeback.py `reflect`;
    `records` holds the CRM's own task for a create found by its key after a
    crash). A row the connector gave no answer for is refused for a moment
    (NO_RESULT): it must not stay inflight forever.
    """
    by_id = {i.id: i for i in batch}
    answered = [r for r in results if r.item_id in by_id]
    seen = {r.item_id for r in answered}
    answered += [
        WriteResult(i.id, ok=False, code="NO_RESULT", detail="no answer", retryable=True)
        for i in batch
        if i.id not in seen
    ]  # a connector bug
    out = Recorded([], [], [])
    with transaction(db):
        mark(db, answered, max_attempts=max_attempts, counted=counted, now=now)
        for result in answered:
            item = by_id[result.item_id]
            if result.sent:
                out.sent.append(item.id)
            if result.ok:
                out.landed.append(item)
                writeback.reflect(db, item, result.crm_id, (records or {}).get(item.id))
            else:
                out.rejections.append(
                    Rejection(item.id, item.kind.value, item.key, item.target_id, result.code,
                              result.detail, status_after(result))  # fmt: skip
                )
    return out


def status_after(result: WriteResult) -> str:
    """The status a refused row takes: "failed" (sent again) or "dead" (given up).

    The one place that decides retry or dead, with `give_up`: a refusal the
    CRM calls permanent (a validation error, a field the user cannot write)
    is dead at once; a transient one (`retryable`: UNABLE_TO_LOCK_ROW and the
    like) is never dead on its own: the drain retries it with backoff within
    the run, and `give_up` ends it only after `max_attempts` runs.
    """
    return "failed" if result.retryable else "dead"


def give_up(
    db: sqlite_utils.Database,
    item_ids: Iterable[int],
    *,
    max_attempts: int,
    now: datetime | None = None,
) -> list[int]:
    """After a run's retries: rows of `item_ids` still failed after `max_attempts` attempts
    (runs that sent them) become dead; return their ids."""
    with transaction(db):
        rows = db.conn.execute(
            "SELECT id, crm, last_error_code, attempts FROM outbox WHERE status = 'failed'"
            " AND attempts >= ? AND id IN (SELECT value FROM json_each(?)) ORDER BY id",
            [max_attempts, dumps(sorted(set(item_ids)))],
        ).fetchall()
        if rows:
            db.conn.execute(
                "UPDATE outbox SET status = 'dead', updated_at = ?"
                " WHERE id IN (SELECT value FROM json_each(?))",
                [encode_datetime(now or now_utc()), dumps([r[0] for r in rows])],
            )
    for row_id, crm, code, attempts in rows:
        log.warning(
            "write given up",
            extra={"crm": crm, "item_id": row_id, "code": code, "attempts": attempts},
        )
    return [int(r[0]) for r in rows]


def inflight_unknown(db: sqlite_utils.Database, crm: str) -> list[OutboxItem]:
    """Rows left inflight by a run that died: their CRM outcome is unknown.

    Call before claiming (under the writer lock, so no live writer owns them).
    """
    rows = db.conn.execute(
        "SELECT id, crm, kind, key, target_id, payload, attempts FROM outbox"
        " WHERE crm = ? AND status = 'inflight' ORDER BY id",
        [crm],
    ).fetchall()
    return [_item(r) for r in rows]


def claimed_at(db: sqlite_utils.Database, item_ids: Iterable[int]) -> dict[int, datetime]:
    """When each inflight row of `item_ids` was claimed; its CRM call followed within the
    batch (a row stays inflight, this time unchanged, until it is marked or released)."""
    rows = db.conn.execute(
        "SELECT id, updated_at FROM outbox WHERE status = 'inflight'"
        " AND id IN (SELECT value FROM json_each(?))",
        [dumps(builtins.list(item_ids))],
    )
    return {int(i): at for i, stamp in rows if (at := decode_datetime(stamp)) is not None}


def release(
    db: sqlite_utils.Database, item_ids: Iterable[int], *, now: datetime | None = None
) -> int:
    """Put inflight rows back to pending (their write did not land); return how many."""
    with transaction(db):
        cursor = db.conn.execute(
            "UPDATE outbox SET status = 'pending', updated_at = ?"
            " WHERE status = 'inflight' AND id IN (SELECT value FROM json_each(?))",
            [encode_datetime(now or now_utc()), dumps(builtins.list(item_ids))],
        )
    return cursor.rowcount


def requeue(
    db: sqlite_utils.Database,
    *,
    crm: str | None = None,
    statuses: Sequence[str] = ("dead", "failed"),
    codes: Iterable[str] | None = None,
    ids: Iterable[int] | None = None,
    now: datetime | None = None,
) -> int:
    """Give refused rows another chance (the cause was fixed); return how many.

    Rows of `statuses` (dead and failed by default), narrowed to a CRM, to the
    CRM's error `codes` and/or to row `ids`, go back to pending with their
    attempts and error cleared; the next run sends them.
    """
    unknown = sorted(set(statuses) - {"dead", "failed"})
    if unknown:
        raise ValueError(f"only dead and failed rows can be requeued, not {', '.join(unknown)}")
    where = ["status IN (SELECT value FROM json_each(?))"]
    params: list[Any] = [encode_datetime(now or now_utc()), dumps(builtins.list(statuses))]
    if crm is not None:
        where.append("crm = ?")
        params.append(crm)
    if codes is not None:
        where.append("coalesce(last_error_code, '') IN (SELECT value FROM json_each(?))")
        params.append(dumps(sorted(set(codes))))
    if ids is not None:
        where.append("id IN (SELECT value FROM json_each(?))")
        params.append(dumps(sorted(set(ids))))
    with transaction(db):
        cursor = db.conn.execute(
            "UPDATE outbox SET status = 'pending', attempts = 0, last_error_code = NULL,"
            " last_error = NULL, updated_at = ? WHERE " + " AND ".join(where),
            params,
        )
    return cursor.rowcount


def requeue_dead(
    db: sqlite_utils.Database, crm: str | None = None, *, now: datetime | None = None
) -> int:
    """Give dead rows another chance (after the admin fixed the cause); return how many."""
    return requeue(db, crm=crm, statuses=("dead",), now=now)


def dead_keys(db: sqlite_utils.Database, crm: str, keys: Iterable[str]) -> set[str]:
    """Those of `keys` whose row is dead: a plan's writes that stay held back until requeued."""
    rows = db.conn.execute(
        "SELECT key FROM outbox WHERE crm = ? AND status = 'dead'"
        " AND key IN (SELECT value FROM json_each(?))",
        [crm, dumps(sorted(set(keys)))],
    )
    return {r[0] for r in rows}


# ---------------------------------------------------------------- reporting


def depth(db: sqlite_utils.Database, crm: str | None = None) -> dict[str, int]:
    """Rows per status (every status present, zero if none)."""
    sql = "SELECT status, count(*) FROM outbox"
    params: list[Any] = []
    if crm is not None:
        sql += " WHERE crm = ?"
        params.append(crm)
    counts = dict.fromkeys(STATUSES, 0)
    counts.update(dict(db.conn.execute(sql + " GROUP BY status", params).fetchall()))
    return counts


def list_items(
    db: sqlite_utils.Database,
    status: str | Sequence[str] | None = None,
    *,
    crm: str | None = None,
    code: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Outbox rows as dicts (payload parsed), oldest first, for `crmsync outbox` and `status`.

    `status` is one status or several; `code` the CRM's error code on the row.
    """
    where: list[str] = []
    params: list[Any] = []
    if status is not None:
        where.append("status IN (SELECT value FROM json_each(?))")
        params.append(dumps([status] if isinstance(status, str) else builtins.list(status)))
    if crm is not None:
        where.append("crm = ?")
        params.append(crm)
    if code is not None:
        where.append("last_error_code = ?")
        params.append(code)
    sql = (
        "SELECT id, crm, kind, key, target_id, payload, status, attempts, last_error_code,"
        " last_error, crm_id, created_at, updated_at, done_at FROM outbox"
    )
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    cursor = db.conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    out = []
    for row in cursor:
        item = dict(zip(names, row, strict=True))
        item["payload"] = loads(item["payload"])
        for column in ("created_at", "updated_at", "done_at"):
            item[column] = decode_datetime(item[column])
        out.append(item)
    return out


@dataclass
class Rejected:
    """Refused rows of one CRM, status and error code, for `crmsync status`."""

    crm: str
    status: str  # "dead" | "failed"
    code: str | None
    rows: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    attempts: tuple[int, int] = (0, 0)  # fewest, most
    message: str | None = None  # the most common of the CRM's messages
    messages: int = 0  # how many different messages


def rejected_summary(db: sqlite_utils.Database, crm: str | None = None) -> list[Rejected]:
    """Dead and failed rows grouped by CRM, status and the CRM's error code; most rows first."""
    sql = (
        "SELECT crm, status, last_error_code, kind, attempts, last_error FROM outbox"
        " WHERE status IN ('dead', 'failed')"
    )
    params: list[Any] = []
    if crm is not None:
        sql += " AND crm = ?"
        params.append(crm)
    groups: dict[tuple[str, str, str | None], Rejected] = {}
    texts: dict[tuple[str, str, str | None], Counter[str]] = {}
    for crm_, status, code, kind, attempts, error in db.conn.execute(sql, params):
        key = (crm_, status, code)
        group = groups.get(key)
        if group is None:
            group = groups[key] = Rejected(crm_, status, code, attempts=(attempts, attempts))
            texts[key] = Counter()
        group.rows += 1
        group.kinds[kind] = group.kinds.get(kind, 0) + 1
        group.attempts = (min(group.attempts[0], attempts), max(group.attempts[1], attempts))
        if error:
            texts[key][error] += 1
    for key, group in groups.items():
        common = texts[key].most_common(1)
        group.message = common[0][0] if common else None
        group.messages = len(texts[key])
    order = {"dead": 0, "failed": 1}
    return sorted(groups.values(), key=lambda g: (order[g.status], -g.rows, g.crm, g.code or ""))


# ---------------------------------------------------------------- what crmsync wrote


def _record(
    db: sqlite_utils.Database,
    crm: str,
    obj: ObjectType,
    record_id: str,
    values: Mapping[str, Any],
    stamp: str | None,
) -> None:
    db.conn.executemany(
        "INSERT INTO written (crm, object, id, field, value, written_at) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (crm, object, id, field) DO UPDATE SET value = excluded.value,"
        " written_at = excluded.written_at",
        [(crm, obj.value, record_id, f, dumps(v), stamp) for f, v in values.items()],
    )


def record_written(
    db: sqlite_utils.Database,
    crm: str,
    object: ObjectType | str,
    id: str,
    values: Mapping[str, Any],
    *,
    written_at: datetime | None = None,
) -> None:
    """Remember what crmsync wrote to `id`'s owned fields (mark() does this for ok rows)."""
    with transaction(db):
        _record(db, crm, ObjectType(object), id, values,
                encode_datetime(written_at or now_utc()))  # fmt: skip


def written(
    db: sqlite_utils.Database,
    crm: str,
    object: ObjectType | str,
    ids: Iterable[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """{record id: {field: value crmsync last wrote}} for `object` (optionally only `ids`)."""
    sql = "SELECT id, field, value FROM written WHERE crm = ? AND object = ?"
    params: list[Any] = [crm, ObjectType(object).value]
    if ids is not None:
        sql += " AND id IN (SELECT value FROM json_each(?))"
        params.append(dumps(sorted(set(ids))))
    out: dict[str, dict[str, Any]] = {}
    for record_id, name, value in db.conn.execute(sql + " ORDER BY id, field", params):
        out.setdefault(record_id, {})[name] = loads(value)
    return out


class LastWrites(Mapping[str, Mapping[str, Any]]):
    """`written` for the records `ids` of `object`, read as it is used: which of them crmsync
    wrote to is read at once (their ids, on the table's key), the values of one when it is
    first looked into. The planner looks only at a value a record's signature does not vouch
    for, or a conflict's (sync/ownership.py): a cycle decodes a few records' values, not every
    value crmsync ever wrote to the accounts it evaluates."""

    def __init__(
        self, db: sqlite_utils.Database, crm: str, object: ObjectType | str, ids: Iterable[str]
    ) -> None:
        self._db, self._crm, self._object = db, crm, ObjectType(object).value
        rows = db.conn.execute(
            "SELECT DISTINCT id FROM written WHERE crm = ? AND object = ?"
            " AND id IN (SELECT value FROM json_each(?))",
            [crm, self._object, dumps(sorted(set(ids)))],
        )
        self._ids = frozenset(r[0] for r in rows)

    def __getitem__(self, record_id: str) -> Mapping[str, Any]:
        if record_id not in self._ids:
            raise KeyError(record_id)
        return _RecordWrites(self, record_id)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._ids

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._ids))

    def __len__(self) -> int:
        return len(self._ids)

    def _values(self, record_id: str) -> dict[str, Any]:
        return written(self._db, self._crm, self._object, [record_id]).get(record_id, {})


class _RecordWrites(Mapping[str, Any]):
    """One record's `written` values, read when first looked into."""

    __slots__ = ("_of", "_id", "_read")

    def __init__(self, of: LastWrites, record_id: str) -> None:
        self._of, self._id = of, record_id
        self._read: dict[str, Any] | None = None

    def _all(self) -> dict[str, Any]:
        if self._read is None:
            self._read = self._of._values(self._id)
        return self._read

    def __getitem__(self, name: str) -> Any:
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())
