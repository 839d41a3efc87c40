"""Drain the outbox into the CRM, record what landed, and check later that it stayed.

How a run writes back (the exact call sequence; `write_back` below does steps
3 to 6 in one call)::

    from crmsync.state.db import open_db
    from crmsync.sync.plan import plan, enqueue, format_plan, render_plan
    from crmsync.sync.drain import BATCH_SIZE, drain, format_drifts, verify_landed

    db = open_db(cfg.mirror.path)
    # 1. pull the CRM into the mirror (sync/pull.py); tasks included, so the
    #    mirror knows crmsync's open tasks and the CRM's current owned values.
    # 2. evaluate: results = sync.evaluate.evaluate(db, crm, cfg.rules, as_of=as_of,
    #              seen_at=started).results   # {account id: rules.AccountResult}
    # 3. drifts = verify_landed(db, crm)       # W9: values changed since we wrote them
    #    for line in format_drifts(drifts): echo(line)
    # 4. p = plan(db, crm, results, cfg.writeback, as_of=as_of)
    # 5. echo(format_plan(p))  (or rich: console.print(render_plan(p)))
    # 6. if not dry_run:
    #        enqueue(db, p)
    #        report = drain(db, connector, crm, batch_size=BATCH_SIZE[crm],
    #                       max_attempts=cfg.writeback.max_attempts,
    #                       should_stop=should_stop, sleep=sleep)
    #        echo(report.summary()); for line in report.errors: echo(line)
    # 7. exit code: 3 if report.aborted (re-raise it: a CrmError), 1 if
    #    report.rejected (rows refused, kept in the outbox), else 0.

Dry run: steps 1 to 5 only; `drain(..., dry_run=True)` returns an empty report
and makes no call at all.

What `drain` does (docs/design.md "Write-back", RELIABILITY W1, W4, W5):

1. Recovery. Rows left inflight by a run that died between the CRM call and
   the outbox commit have an unknown outcome. Task creates among them are
   looked up in the CRM by their key (`connector.find_tasks_by_keys`): found
   means it landed (marked done, task stored in the mirror), not found means
   it did not (back to pending). Updates are idempotent and simply go back to
   pending. No task is ever created twice for a key. Where the look-up lags
   writes (HubSpot's search index, `connector.index_lag`), a create not found
   that was sent less than the lag ago stays inflight for a later run to look
   again (`DrainReport.waiting`).
2. Claim pending rows (and rows an earlier run saw refused for a moment) in
   batches (Salesforce 200, HubSpot 100), call `connector.write`, mark each
   row by the CRM's answer (state/outbox.py decides): done; dead at once for
   a permanent refusal, with the CRM's code and message kept on the row;
   failed for a transient one (UNABLE_TO_LOCK_ROW and the like).
3. Transient refusals are sent again within the run after the waits of the
   one retry policy (connectors/retry.py `retry_waits`: exponential backoff
   with jitter, bounded in attempts and time). A row still refused then stays
   failed for the next run; it becomes dead only after `max_attempts` runs
   that sent it (`outbox.give_up`): a transient error alone never kills a row.
   A row's attempts count the runs that sent it, never a stop.
4. A landed write is recorded for the ownership guard (state.outbox.mark) and
   reflected in the mirror in the same transaction: owned values updated, a
   created task inserted with its new id, so the next plan updates it rather
   than creating another, even before the next pull.
5. A stop (CrmUnavailable after the connector's retries, AuthFailed,
   QuotaExhausted: the daily limit or crmsync's share of it) ends the drain.
   A connector sends one batch in several requests (one per object, per 100
   or 200 rows); what the CRM answered before the stop rides on the error
   (`CrmError.answered`) and is recorded first, as any answer: landed rows
   are done with their written values, so the next run neither sends them
   again nor reads its own values as a person's edit. The rest goes back to
   pending with its attempts unchanged (creates stay inflight for step 1 of
   the next run: the CRM may have applied them). The report carries the
   error in `aborted`.

`verify_landed(db, crm)`, run after a pull, compares the mirror's owned
values with what crmsync last wrote and lists each field that differs: a
CRM workflow reverted it, or a person edited it (W8/W9). The planner never
rewrites such a field (ownership guard, sync/ownership.py), so a revert
cannot cause a write loop. A run reports it once, as a conflict
(sync/conflicts.py), not through this list.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlite_utils

from crmsync.connectors.base import ApiCalls
from crmsync.connectors.errors import AuthFailed, CrmError, CrmUnavailable, QuotaExhausted
from crmsync.connectors.retry import DEFAULT_POLICY, RetryPolicy, retry_waits
from crmsync.state import outbox
from crmsync.state.db import dumps, encode_date, now_utc, transaction
from crmsync.state.model import CrmRecord, ObjectType, OutboxItem, WriteKind, WriteResult

from .ownership import SIGNATURE
from .plan import Plan, WritebackSettings, enqueue, plan, same

log = logging.getLogger(__name__)

BATCH_SIZE: Mapping[str, int] = {"salesforce": 200, "hubspot": 100}
STOPS = (CrmUnavailable, AuthFailed, QuotaExhausted)


class WritingConnector(Protocol):
    crm: str
    calls: ApiCalls

    def write(self, batch: Sequence[OutboxItem]) -> list[WriteResult]: ...

    def find_tasks_by_keys(self, keys: Iterable[str]) -> Mapping[str, Any]: ...


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


@dataclass
class DrainReport:
    crm: str
    dry_run: bool = False
    written: int = 0
    rejections: list[Rejection] = field(default_factory=list)  # every refusal, in order
    recovered: int = 0  # inflight creates found in the CRM after a crash
    waiting: int = 0  # inflight creates not found yet, sent less than the CRM's index lag ago
    released: int = 0  # inflight rows put back to pending
    batches: int = 0
    calls: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    aborted: CrmError | None = None
    landed_ids: set[int] = field(default_factory=set, repr=False)
    sent_ids: set[int] = field(default_factory=set, repr=False)  # rows this run sent (attempt counted)

    def transient_ids(self) -> list[int]:
        """Rows this run sent that the CRM refused for a moment and that have not landed."""
        return sorted(r.item_id for r in self._final() if r.status == "failed")

    @property
    def rejected(self) -> int:
        """How many rows the CRM refused that did not land in the end (failed or dead)."""
        return len(self._final())

    @property
    def errors(self) -> list[str]:
        """One line per refused row: what, which record, the CRM's code and message."""
        return [
            f"{r.kind} {r.target_id or r.key}: {r.code or 'error'}"
            + (f" - {r.detail}" if r.detail else "")
            + (" (will retry)" if r.status == "failed" else "")
            for r in self._final()
        ]

    def counts(self) -> dict[str, int]:
        return {
            "written": self.written,
            "failed": len(self.failed),
            "dead": len(self.dead),
            "recovered": self.recovered,
            "waiting": self.waiting,
            "calls": self.calls,
            **{f"written_{k}": v for k, v in sorted(self.by_kind.items())},
        }

    @property
    def dead(self) -> list[Rejection]:
        """Rows given up for good (the last answer per row)."""
        return [r for r in self._final() if r.status == "dead"]

    @property
    def failed(self) -> list[Rejection]:
        return [r for r in self._final() if r.status == "failed"]

    def _final(self) -> list[Rejection]:
        """The last answer per row that never landed (a retried row that landed drops out)."""
        last: dict[int, Rejection] = {}
        for r in self.rejections:
            if r.item_id not in self.landed_ids:
                last[r.item_id] = r
        return list(last.values())

    def summary(self) -> str:
        parts = [f"{self.crm}: {self.written} write(s) landed"]
        if self.recovered:
            parts.append(f"{self.recovered} recovered after a crash")
        if self.waiting:
            parts.append(f"{self.waiting} task create(s) wait for the CRM's search to catch up")
        if self.failed:
            parts.append(f"{len(self.failed)} to retry")
        if self.dead:
            parts.append(f"{len(self.dead)} rejected")
        parts.append(f"{self.calls} API call(s)")
        if self.aborted is not None:
            parts.append(f"stopped: {self.aborted}")
        return ", ".join(parts)


# ---------------------------------------------------------------- drain


def drain(
    db: sqlite_utils.Database,
    connector: WritingConnector,
    crm: str,
    *,
    batch_size: int,
    max_attempts: int,
    dry_run: bool = False,
    should_stop: Callable[[], bool] | None = None,
    now: datetime | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> DrainReport:
    """Write the outbox's rows for `crm` through `connector`; see the module docstring.

    `should_stop` (SIGTERM/SIGINT) is checked between batches: the batch in
    flight finishes and is recorded, the rest stays pending for the next run.
    Rows the CRM refused for a moment are sent again after the waits of
    `policy` (connectors/retry.py `retry_waits`), slept with `sleep`.
    """
    report = DrainReport(crm=crm, dry_run=dry_run)
    if dry_run:
        return report
    before = connector.calls.total
    stop = should_stop or (lambda: False)
    try:
        _recover(db, connector, crm, report, now)
        # Pending rows, and rows refused for a moment in an earlier run.
        ready = outbox.ready_ids(db, crm)
        _pass(db, connector, crm, report, batch_size, max_attempts, now, stop, ready)
        for wait in retry_waits(policy, rng):
            again = report.transient_ids()
            if not again or stop():
                break
            log.info(
                "sending again writes the CRM refused for a moment",
                extra={"crm": crm, "rows": len(again), "wait_seconds": round(wait, 3)},
            )
            sleep(wait)
            _pass(db, connector, crm, report, batch_size, max_attempts, now, stop, again)
    except STOPS as exc:
        report.aborted = exc
        log.warning(
            "write-back stopped: the rest stays in the outbox for the next run",
            extra={"crm": crm, "error": type(exc).__name__, "code": exc.code},
        )
    finally:
        report.calls = connector.calls.total - before
        _give_up(db, report, max_attempts, now)
    log.info(
        "write-back drained",
        extra={
            "crm": crm,
            "written": report.written,
            "failed": len(report.failed),
            "dead": len(report.dead),
            "recovered": report.recovered,
            "calls": report.calls,
        },
    )
    return report


def _pass(
    db: sqlite_utils.Database,
    connector: WritingConnector,
    crm: str,
    report: DrainReport,
    batch_size: int,
    max_attempts: int,
    now: datetime | None,
    stop: Callable[[], bool],
    ids: Sequence[int],
) -> None:
    """Claim and write the rows `ids` in batches, each row once."""
    for start in range(0, len(ids), batch_size):
        if stop():
            return
        batch = outbox.claim(db, crm, batch_size, ids=ids[start : start + batch_size], now=now)
        if not batch:
            continue
        report.batches += 1
        try:
            results = connector.write(batch)
        except STOPS as exc:
            # What the CRM answered before the stop (an earlier request of this batch) is
            # recorded as any answer; the rest was not written, or its outcome is unknown.
            answered = [r for r in exc.answered if isinstance(r, WriteResult)]
            done = {r.item_id for r in answered}
            if answered:
                _apply(db, crm, [i for i in batch if i.id in done], answered, report,
                       max_attempts, now)  # fmt: skip
            # Updates are idempotent: queue them again. Creates may have landed (a timeout
            # after the server applied them, W4): they stay inflight for the key check at
            # the start of the next drain.
            report.released += outbox.release(
                db,
                [i.id for i in batch if i.id not in done and i.kind is not WriteKind.CREATE_TASK],
                now=now,
            )
            raise
        _apply(db, crm, batch, results, report, max_attempts, now)


def _apply(
    db: sqlite_utils.Database,
    crm: str,
    batch: Sequence[OutboxItem],
    results: Sequence[WriteResult],
    report: DrainReport,
    max_attempts: int,
    now: datetime | None,
) -> None:
    by_id = {i.id: i for i in batch}
    answered = [r for r in results if r.item_id in by_id]
    missing = [i for i in batch if i.id not in {r.item_id for r in answered}]
    for item in missing:  # a connector bug; the row must not stay inflight forever
        answered.append(
            WriteResult(item.id, ok=False, code="NO_RESULT", detail="no answer", retryable=True)
        )
    refused: list[Rejection] = []
    with transaction(db):
        outbox.mark(db, answered, max_attempts=max_attempts, counted=report.sent_ids, now=now)
        for result in answered:
            item = by_id[result.item_id]
            if result.sent:
                report.sent_ids.add(item.id)
            if result.ok:
                report.written += 1
                report.landed_ids.add(item.id)
                report.by_kind[item.kind.value] = report.by_kind.get(item.kind.value, 0) + 1
                _reflect(db, crm, item, result.crm_id)
            else:
                refused.append(
                    Rejection(
                        item.id,
                        item.kind.value,
                        item.key,
                        item.target_id,
                        result.code,
                        result.detail,
                        outbox.status_after(result),
                    )  # fmt: skip
                )
    report.rejections.extend(refused)
    for r in refused:
        log.warning(
            "CRM rejected a write" if r.status == "dead" else "CRM refused a write; will retry",
            extra={"crm": crm, "item_id": r.item_id, "kind": r.kind,
                   "record_id": r.target_id, "code": r.code},
        )  # fmt: skip


def _give_up(
    db: sqlite_utils.Database, report: DrainReport, max_attempts: int, now: datetime | None
) -> None:
    """Rows this run sent that are still refused after `max_attempts` runs become dead."""
    refused = [r.item_id for r in report._final() if r.status == "failed"]
    if not refused:
        return
    dead = set(outbox.give_up(db, refused, max_attempts=max_attempts, now=now))
    last = {r.item_id: r for r in report._final()}
    report.rejections.extend(replace(last[i], status="dead") for i in sorted(dead))


# ---------------------------------------------------------------- crash recovery


def _recover(
    db: sqlite_utils.Database,
    connector: WritingConnector,
    crm: str,
    report: DrainReport,
    now: datetime | None,
) -> None:
    """Settle rows a dead run left inflight: look task creates up by key, requeue the rest.

    A create not found whose claim is younger than the connector's `index_lag` stays
    inflight (counted in `report.waiting`): the CRM's look-up may not show it yet.
    """
    unknown = outbox.inflight_unknown(db, crm)
    if not unknown:
        return
    creates = [i for i in unknown if i.kind is WriteKind.CREATE_TASK]
    others = [i.id for i in unknown if i.kind is not WriteKind.CREATE_TASK]
    found: Mapping[str, Any] = {}
    if creates:
        found = connector.find_tasks_by_keys(sorted({_task_key(i) for i in creates}))
    landed = [(i, found[_task_key(i)]) for i in creates if _task_key(i) in found]
    with transaction(db):
        outbox.mark(
            db,
            [WriteResult(i.id, ok=True, crm_id=_task_id(t)) for i, t in landed],
            max_attempts=1,
            now=now,
        )
        for item, task in landed:
            _reflect(db, crm, item, _task_id(task), record=task)
    report.recovered += len(landed)
    landed_ids = {i.id for i, _ in landed}
    # HubSpot's search index lags writes (documented as eventually consistent, no figure:
    # api-facts §3, airbyte #69203; P6): a create sent less than `index_lag` ago (its claim,
    # which the send follows) may have landed and not be found yet. Sending it again could
    # create a second task, so it stays inflight and a later run looks again; once the lag
    # has passed, a key still not found did not land and is sent as any other.
    lag: timedelta = getattr(connector, "index_lag", timedelta(0))
    missing = [i.id for i in creates if i.id not in landed_ids]
    claimed = outbox.claimed_at(db, missing) if lag and missing else {}
    at = now or now_utc()
    young = {i for i, t in claimed.items() if at - t < lag}
    report.waiting += len(young)
    report.released += outbox.release(
        db, others + [i for i in missing if i not in young], now=now
    )
    log.info(
        "inflight writes settled after a crash",
        extra={"crm": crm, "landed": len(landed), "waiting": len(young),
               "requeued": len(unknown) - len(landed) - len(young)},
    )  # fmt: skip
    if young:
        log.warning(
            "task creates wait for the CRM's search to catch up; a later run looks again",
            extra={"crm": crm, "rows": len(young), "lag_seconds": lag.total_seconds()},
        )


def _task_key(item: OutboxItem) -> str:
    return str(item.payload.get("key") or item.key)


def _task_id(task: Any) -> str:
    return task.id if isinstance(task, CrmRecord) else str(task)


# ---------------------------------------------------------------- mirror reflection


_TASK_COLUMNS = ("subject", "body", "status", "priority", "due_date", "owner_id",
                 "account_id", "contact_id")  # fmt: skip


def _reflect(
    db: sqlite_utils.Database,
    crm: str,
    item: OutboxItem,
    crm_id: str | None,
    record: Any = None,
) -> None:
    """Make the mirror show what the CRM now holds after a landed write.

    The next pull overwrites these values with the CRM's own (and a workflow's
    revert then shows up in verify_landed). Joins the caller's transaction.
    """
    payload = dict(item.payload)
    if item.kind is WriteKind.UPDATE_ACCOUNT:
        _merge_owned(db, "accounts", crm, item.target_id, payload)
    elif item.kind is WriteKind.UPDATE_CONTACT:
        _merge_owned(db, "contacts", crm, item.target_id, payload)
    elif item.kind is WriteKind.CREATE_TASK:
        _insert_task(db, crm, crm_id or item.target_id, payload, record)
    else:
        _update_task(db, crm, crm_id or item.target_id, item.kind, payload)
    if item.kind in (WriteKind.UPDATE_TASK, WriteKind.COMPLETE_TASK) and SIGNATURE in payload:
        _merge_owned(db, "tasks", crm, crm_id or item.target_id, {SIGNATURE: payload[SIGNATURE]})


def _merge_owned(
    db: sqlite_utils.Database,
    table: str,
    crm: str,
    record_id: str | None,
    payload: Mapping[str, Any],
) -> None:
    if not record_id:
        return
    row = db.conn.execute(
        f"SELECT owned FROM {table} WHERE crm = ? AND id = ?", [crm, record_id]
    ).fetchone()
    if row is None:
        return
    owned = json.loads(row[0]) if row[0] else {}
    owned.update(payload)
    db.conn.execute(
        f"UPDATE {table} SET owned = ? WHERE crm = ? AND id = ?", [dumps(owned), crm, record_id]
    )


def _insert_task(
    db: sqlite_utils.Database,
    crm: str,
    task_id: str | None,
    payload: Mapping[str, Any],
    record: Any,
) -> None:
    if not task_id:
        return
    values = {c: payload.get(c) for c in _TASK_COLUMNS}
    if isinstance(record, CrmRecord):  # found by key: the CRM's own values
        values.update({c: record.values.get(c, values.get(c)) for c in _TASK_COLUMNS})
    values["due_date"] = encode_date(values.get("due_date"))
    closed = str(values.get("status") or "").lower() in ("completed", "complete")
    generation = _task_generation(db, crm)
    db.conn.execute(
        "INSERT INTO tasks (crm, id, key, account_id, contact_id, owner_id, subject, body,"
        " status, priority, due_date, is_closed, owned, synced_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (crm, id) DO UPDATE SET key = excluded.key, subject = excluded.subject,"
        " body = excluded.body, status = excluded.status, priority = excluded.priority,"
        " owner_id = excluded.owner_id, is_closed = excluded.is_closed, deleted_at = NULL",
        [
            crm, task_id, payload.get("key"), values["account_id"], values["contact_id"],
            values["owner_id"], values["subject"], values["body"], values["status"],
            values["priority"], values["due_date"], int(closed),
            dumps({"key": payload.get("key"), SIGNATURE: payload.get(SIGNATURE)}), generation,
        ],
    )  # fmt: skip


def _update_task(
    db: sqlite_utils.Database,
    crm: str,
    task_id: str | None,
    kind: WriteKind,
    payload: Mapping[str, Any],
) -> None:
    if not task_id:
        return
    sets = {c: payload[c] for c in _TASK_COLUMNS if c in payload}
    if "due_date" in sets:
        sets["due_date"] = encode_date(sets["due_date"])
    if kind is WriteKind.COMPLETE_TASK:
        sets.setdefault("status", "completed")
    if "status" in sets:
        sets["is_closed"] = int(str(sets["status"]).lower() in ("completed", "complete"))
    if not sets:
        return
    assignments = ", ".join(f"{c} = ?" for c in sets)
    db.conn.execute(
        f"UPDATE tasks SET {assignments} WHERE crm = ? AND id = ?", [*sets.values(), crm, task_id]
    )


def _task_generation(db: sqlite_utils.Database, crm: str) -> int:
    row = db.conn.execute(
        "SELECT generation FROM cursors WHERE crm = ? AND object = ?", [crm, ObjectType.TASK.value]
    ).fetchone()
    return int(row[0] or 0) if row else 0


# ---------------------------------------------------------------- read-after-write (W9)


@dataclass(frozen=True)
class Drift:
    """An owned field whose CRM value is no longer what crmsync wrote (after a pull)."""

    object: str  # "accounts" | "contacts"
    record_id: str
    field: str
    written: Any
    crm_value: Any
    written_at: str


def verify_landed(db: sqlite_utils.Database, crm: str) -> list[Drift]:
    """Fields whose mirrored CRM value differs from what crmsync last wrote there.

    Run after a pull: each is a value a CRM workflow reverted or a person
    changed. The planner leaves such fields alone (and lists them as
    conflicts), so they are reported, never rewritten in a loop.
    """
    drifts: list[Drift] = []
    for table in (ObjectType.ACCOUNT.value, ObjectType.CONTACT.value):
        rows = db.conn.execute(
            f"SELECT w.id, w.field, w.value, w.written_at, t.owned FROM written w"
            f" JOIN {table} t ON t.crm = w.crm AND t.id = w.id"
            f" WHERE w.crm = ? AND w.object = ? AND t.deleted_at IS NULL ORDER BY w.id, w.field",
            [crm, table],
        )
        for record_id, name, value, written_at, owned in rows:
            if name in (SIGNATURE, "key"):
                continue  # bookkeeping: the values it vouches for are checked themselves
            wrote = json.loads(value) if value is not None else None
            current = (json.loads(owned) if owned else {}).get(name)
            if not same(name, wrote, current):
                drifts.append(Drift(table, record_id, name, wrote, current, written_at))
    if drifts:  # a run reports these once, as conflicts (sync/conflicts.py)
        log.debug(
            "written values changed in the CRM since crmsync wrote them",
            extra={"crm": crm, "fields": len(drifts),
                   "record_ids": sorted({d.record_id for d in drifts})[:20]},
        )  # fmt: skip
    return drifts


def format_drifts(drifts: Sequence[Drift]) -> list[str]:
    """One line per reverted or edited field, for the run summary."""
    return [
        f"{d.object[:-1]} {d.record_id} {d.field}: crmsync wrote {d.written!r} "
        f"({d.written_at[:10]}), the CRM now holds {d.crm_value!r}; left as is"
        for d in drifts
    ]


# ---------------------------------------------------------------- one call


@dataclass
class WriteBack:
    plan: Plan
    drifts: list[Drift]
    report: DrainReport


def write_back(
    db: sqlite_utils.Database,
    connector: WritingConnector,
    crm: str,
    results_by_account: Mapping[str, Any],
    settings: WritebackSettings,
    *,
    as_of: datetime,
    dry_run: bool = False,
    batch_size: int | None = None,
) -> WriteBack:
    """Steps 3 to 6 of a run (module docstring): verify, plan, enqueue, drain."""
    drifts = verify_landed(db, crm)
    p = plan(db, crm, results_by_account, settings, as_of=as_of)
    dry = dry_run or settings.dry_run or not settings.enabled
    if not dry:
        enqueue(db, p)
    report = drain(
        db,
        connector,
        crm,
        batch_size=batch_size or BATCH_SIZE.get(crm, 100),
        max_attempts=settings.max_attempts,
        dry_run=dry,
    )
    return WriteBack(p, drifts, report)
