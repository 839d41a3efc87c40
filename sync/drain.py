"""Drain the outbox into the CRM and record what landed.

A run (sync/run.py) pulls, evaluates, plans (sync/plan.py), queues the plan
(`enqueue`) and then calls `drain`. Dry run: no enqueue, and
`drain(..., dry_run=True)` returns an empty report and makes no call at all.

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
4. `outbox.record_results` records each answer: a landed write is kept for
   the ownership guard and reflected in the mirror in the same transaction
   (state/writeback.py: owned values updated, a created task inserted with its
   new id), so the next plan updates it rather than creating another, even
   before the next pull. The drain itself runs no SQL.
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
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

import sqlite_utils

from crmsync.connectors.base import ApiCalls
from crmsync.connectors.errors import AuthFailed, CrmError, CrmUnavailable, QuotaExhausted
from crmsync.connectors.retry import DEFAULT_POLICY, RetryPolicy, retry_waits
from crmsync.state import outbox
from crmsync.state.db import now_utc
from crmsync.state.model import CrmRecord, OutboxItem, WriteKind, WriteResult
from crmsync.state.outbox import Rejection

log = logging.getLogger(__name__)

STOPS = (CrmUnavailable, AuthFailed, QuotaExhausted)


class WritingConnector(Protocol):
    crm: str
    calls: ApiCalls

    def write(self, batch: Sequence[OutboxItem]) -> list[WriteResult]: ...

    def find_tasks_by_keys(self, keys: Iterable[str]) -> Mapping[str, CrmRecord | str]: ...

    @property
    def index_lag(self) -> timedelta: ...  # how far find_tasks_by_keys may lag writes


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
    recorded = outbox.record_results(
        db, batch, results, max_attempts=max_attempts, counted=report.sent_ids, now=now
    )
    report.sent_ids.update(recorded.sent)
    for item in recorded.landed:
        report.written += 1
        report.landed_ids.add(item.id)
        report.by_kind[item.kind.value] = report.by_kind.get(item.kind.value, 0) + 1
    refused = recorded.rejections
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
    found: Mapping[str, CrmRecord | str] = {}
    if creates:
        found = connector.find_tasks_by_keys(sorted({_task_key(i) for i in creates}))
    landed = [(i, found[_task_key(i)]) for i in creates if _task_key(i) in found]
    outbox.record_results(
        db,
        [i for i, _ in landed],
        [WriteResult(i.id, ok=True, crm_id=_task_id(t)) for i, t in landed],
        max_attempts=1,
        records={i.id: t for i, t in landed if isinstance(t, CrmRecord)},
        now=now,
    )
    report.recovered += len(landed)
    landed_ids = {i.id for i, _ in landed}
    # HubSpot's search index lags writes (documented as eventually consistent, no figure:
    # api-facts §3, airbyte #69203; P6): a create sent less than `index_lag` ago (its claim,
    # which the send follows) may have landed and not be found yet. Sending it again could
    # create a second task, so it stays inflight and a later run looks again; once the lag
    # has passed, a key still not found did not land and is sent as any other.
    lag = connector.index_lag
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


def _task_id(task: CrmRecord | str) -> str:
    return task.id if isinstance(task, CrmRecord) else str(task)
