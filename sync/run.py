"""One run per CRM: pull, rules, plan, drain — and `setup`.

    run_all(cfg, crm=None, opts)          the CLI's `sync` and `plan`
      run_once(cfg, crm, opts)            one CRM, under the mirror's writer lock
        pull.pull(...)                    connector pages -> mirror, page + cursor per commit
        evaluate.evaluate_and_plan(...)   mirror -> rules -> flags (state) -> plan -> outbox,
                                          chunk by chunk, in one transaction (diffed, guarded)
        conflicts.track(...)              values that are not crmsync's: recorded, logged once
        drain.drain(...)                  outbox -> connector.write -> outbox marks

Every run is recorded in `runs` with its counts, API calls and outcome, also
when it fails; the exception then goes up to the CLI, which maps it to an exit
code.

Previews store nothing. `crmsync plan` (the mirror as it is) and `crmsync sync
--dry-run` (pull first) run the same steps inside one transaction that is
always rolled back, evaluate the flags without storing them, stop before the
outbox and record no run: the flags, runs, outbox, written values and mirror
rows that `status`, `flags`, `report` and /healthz read are left exactly as
they were (a dry run spends the pull's API calls and keeps nothing of it).

Write-back needs crmsync's own fields in the CRM. A run reads which are
missing from the schema its pull already read (`owned_fields_missing`, no
extra call); if any is, it queues nothing (every write would be refused),
records the run as failed and ends with FieldsMissing (exit 3): run `crmsync
setup`, which creates them and requeues the rows a CRM refused for want of
them.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from crmsync.connectors import CONNECTORS
from crmsync.connectors.base import ApiCalls, Connector
from crmsync.connectors.errors import CrmError, QuotaExhausted
from crmsync.connectors.retry import Sleep
from crmsync.state import cursors, outbox, runs, schema_cache
from crmsync.state.db import mirror_error, mirror_errors, open_db, rolled_back
from crmsync.state.errors import (
    EXIT_CRM,
    EXIT_OK,
    EXIT_REJECTED,
    INTERRUPTED_LINE,
    FieldsMissing,
    Interrupted,
    MirrorBusy,
    UsageError,
    error_line,
)
from crmsync.state.lock import acquire_writer_lock
from crmsync.state.model import FieldCheck
from crmsync.state.schema_cache import MirrorSchemaStore

from . import conflicts as conflicts_mod
from . import drain as drain_mod
from . import enrichment as enrichment_mod
from . import evaluate as evaluate_mod
from . import identity as identity_mod
from . import plan as plan_mod
from . import pull as pull_mod
from .config import Config, ConfigError
from .reconcile import reconcile
from .report import _open, print_run
from .writeback_settings import WritebackSettings

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class RunOptions:
    full: bool = False
    reconcile: bool = False
    pull_only: bool = False
    dry_run: bool = False
    skip_pull: bool = False
    as_of: datetime | None = None
    wait: bool = True
    progress: bool = False
    allow_empty: bool = False  # accept a full pull that finds an object empty (deletes its mirror rows)

    @property
    def preview(self) -> bool:
        """A plan or dry run: runs every step but stores nothing and writes nothing."""
        return self.dry_run or self.skip_pull


@dataclass
class RunReport:
    crm: str
    run_id: int = 0
    mode: str = "incremental"
    outcome: str = "ok"
    waits_for: str | None = None  # [identity]: the other CRM, never pulled; rules not run
    pull: pull_mod.PullReport | None = None
    evaluation: evaluate_mod.Evaluation | None = None
    plan: plan_mod.Plan | None = None
    drain: drain_mod.DrainReport | None = None
    api_calls: int = 0
    api_by_operation: dict[str, int] = field(default_factory=dict)
    quota: tuple[int | None, int | None] | None = None
    error: str | None = None
    seconds: float = 0.0
    conflicts: conflicts_mod.Tracked | None = None  # open, new this run, resolved
    reconcile: dict[str, dict[str, int]] | None = None  # per object: deleted, listed, api_calls
    preview: bool = False  # a plan or dry run: nothing stored, no run recorded
    fields_missing: list[FieldCheck] = field(default_factory=list)  # write-back not possible
    queued: int = 0  # planned writes put into the outbox (new or changed rows)
    held: int = 0  # planned writes a dead outbox row holds back (`crmsync outbox`)
    writeback_off: bool = False  # [writeback] enabled = false or dry_run = true
    stopped_by: CrmError | None = None  # the CRM error that ended the run (run_all, keep_crm_error)
    retry_at: datetime | None = None  # a quota stop: when the CRM's allocation allows the next run
    quota_code: str | None = None  # a quota stop: MAX_DAILY_SHARE (crmsync's share), DAILY, ...
    as_of: datetime | None = None  # the time the rules were evaluated as of (runs.as_of)
    enrichment: enrichment_mod.EnrichmentReport | None = None  # outside people-data asked

    @property
    def rejected(self) -> int:
        return self.drain.rejected if self.drain is not None else 0

    @property
    def exit_code(self) -> int:
        if self.outcome in ("failed", "quota_exhausted") or self.fields_missing:
            return EXIT_CRM
        return EXIT_REJECTED if self.rejected or self.held else EXIT_OK


def stop_aware_sleep(should_stop: Callable[[], bool]) -> Callable[[float], None]:
    """A sleep for retry backoff and lock polling that gives up as soon as a stop is asked."""

    def sleep(seconds: float) -> None:
        deadline = time.monotonic() + max(0.0, seconds)
        while True:
            if should_stop():
                raise Interrupted("stop requested")
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.1))

    return sleep


def make_connector(
    crm: str, settings: object, *, calls: ApiCalls | None = None, sleep: Sleep = time.sleep
) -> Connector:
    """The connector for `crm`, built from its settings (no network yet)."""
    return CONNECTORS[crm](settings, calls=calls, sleep=sleep)


def now_utc() -> datetime:
    return datetime.now(UTC)


def run_once(
    cfg: Config,
    crm: str,
    opts: RunOptions,
    *,
    connector: Connector | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], datetime] = now_utc,
    progress: pull_mod.Progress | None = None,
    keep_crm_error: bool = False,
) -> RunReport:
    """One run for one CRM, holding the mirror's writer lock throughout.

    A CRM error that ends the run (exit 3: a quota stop, an outage, refused
    credentials) is recorded and raised; with `keep_crm_error` it is kept on
    `report.stopped_by` instead, so the caller can go on with the next CRM.
    """
    settings = cfg.connectors[crm]
    mode = "plan" if opts.skip_pull else ("full" if opts.full else "incremental")
    if opts.reconcile:
        mode = "reconcile"
    report = RunReport(crm, mode=mode, preview=opts.preview)
    t0 = time.monotonic()
    sleep = stop_aware_sleep(should_stop)
    path = cfg.mirror.path
    db = None
    try:
        # The writer lock first: opening the mirror may migrate it, which is a write.
        with ExitStack() as stack, mirror_errors(path):
            try:
                stack.enter_context(acquire_writer_lock(path, wait=False))
            except MirrorBusy as busy:
                if not opts.wait:
                    raise
                log.warning(f"{busy}; waiting for it to finish", extra={"crm": crm})
                stack.enter_context(acquire_writer_lock(
                    path, wait=True, timeout=cfg.daemon.lock_timeout_seconds, sleep=sleep,
                ))
            db = open_db(path)
            started = clock()
            if mode == "incremental" and not cursors.ever_pulled(db, crm):
                mode = report.mode = "full"  # a first sync pulls every object in full
            if not opts.preview:
                runs.close_interrupted(db, started)
                report.run_id = runs.start(db, crm, mode, started)
            failing = False
            try:
                connector = connector or make_connector(crm, settings, sleep=sleep)
                if opts.preview:
                    # A dry run's pull writes, so it takes the write lock up front; a plan only reads.
                    with rolled_back(db, write=not opts.skip_pull):
                        _steps(cfg, db, crm, opts, connector, report, started, should_stop,
                               progress, sleep)  # fmt: skip
                else:
                    _steps(cfg, db, crm, opts, connector, report, started, should_stop, progress,
                           sleep)  # fmt: skip
            except Interrupted:
                report.outcome = "interrupted"
            except BaseException as e:
                failing = True
                err = mirror_error(e, path) or e
                if isinstance(e, KeyboardInterrupt):  # a second Ctrl-C / SIGTERM
                    report.outcome = "interrupted"
                else:
                    report.outcome = "quota_exhausted" if isinstance(e, QuotaExhausted) else "failed"
                if isinstance(e, QuotaExhausted):
                    report.retry_at, report.quota_code = e.retry_at, e.code
                report.error = error_line(err)  # the line the CLI prints, never a CRM body
                if keep_crm_error and isinstance(err, CrmError):
                    report.stopped_by = err
                elif err is not e:
                    raise err from e
                else:
                    raise
            finally:
                if connector is not None:
                    report.api_calls = connector.calls.total
                    report.api_by_operation = dict(connector.calls.by_operation)
                    q = connector.quota()
                    report.quota = (q.used, q.limit)
                report.seconds = time.monotonic() - t0
                try:
                    if not opts.preview:
                        runs.finish(
                            db, report.run_id, report.outcome, clock(),
                            counts=_counts(report), api_calls=report.api_calls,
                            api_by_operation=report.api_by_operation, quota=report.quota,
                            error=report.error, as_of=report.as_of,
                        )
                except sqlite3.Error as e:
                    if not failing:
                        raise
                    # Keep the error that ended the run; the next run records this one as
                    # interrupted (runs.close_interrupted).
                    log.warning(
                        "could not record the run's outcome in the mirror",
                        extra={"crm": crm, "run_id": report.run_id, "error": str(e)},
                    )
                _log_run(report)
    except Interrupted:
        report.outcome = "interrupted"  # stopped while waiting for the lock: nothing ran
    finally:
        if db is not None:
            db.close()
    return report


def _people_changed(report: RunReport) -> bool:
    """Whether the pull (or reconcile) changed an account or a contact in the mirror."""
    pulled = report.pull.objects if report.pull is not None else []
    if any(
        o.object in ("accounts", "contacts") and o.inserted + o.updated + o.deleted
        for o in pulled
    ):
        return True
    return any(
        (r or {}).get("deleted") for o, r in (report.reconcile or {}).items()
        if o in ("accounts", "contacts")
    )  # fmt: skip


def _unpulled_other(cfg: Config, db: sqlite_utils.Database, crm: str) -> str | None:
    """With [identity] on, the other enabled CRM if it has never been pulled: judging this
    CRM's people without its evidence would flag (and task) what the other CRM disproves."""
    if not cfg.identity.on:
        return None
    for other in cfg.connectors:
        if other != crm and not cursors.ever_pulled(db, other):
            return other
    return None


def _steps(
    cfg: Config,
    db: sqlite_utils.Database,
    crm: str,
    opts: RunOptions,
    connector: Connector,
    report: RunReport,
    started: datetime,
    should_stop: Callable[[], bool],
    progress: pull_mod.Progress | None,
    sleep: Callable[[float], None],
) -> None:
    if not opts.skip_pull:
        # Schema look-ups kept in the mirror, aged by this run's clock (issue 14).
        connector.use_schema_store(MirrorSchemaStore(db, crm, now=started))
        connector.check()
        report.pull = pull_mod.PullReport(crm)  # filled page by page: kept if the pull fails
        pull_mod.pull(
            db, connector, full=opts.full, started_at=started,
            should_stop=should_stop, progress=progress, allow_empty=opts.allow_empty,
            report=report.pull,
        )
        if report.pull.interrupted:
            report.outcome = "interrupted"
            return
        if opts.reconcile:

            report.reconcile = reconcile(db, connector, seen_at=started)
        # The same people in the other CRM's mirror, linked again after a pull that
        # changed an account or a contact.
        identity_mod.refresh(db, cfg.identity, now=started, changed=_people_changed(report))
    if opts.pull_only:
        return
    report.waits_for = _unpulled_other(cfg, db, crm)
    if report.waits_for is not None:
        log.info(
            "[identity] is on and the other CRM was never pulled: this CRM's rules and "
            "write-back wait for its evidence",
            extra={"crm": crm, "other": report.waits_for},
        )
        return

    as_of = opts.as_of or started
    report.as_of = as_of
    writeback = cfg.writeback.enabled
    if writeback and not opts.skip_pull:
        # Read from the schema the pull already read (no call): with a field missing, every
        # write would be refused, so the run plans without queueing and fails.
        report.fields_missing = _fields_missing(connector, cfg.writeback)
    off = not writeback or cfg.writeback.dry_run  # [writeback]: plan only, queue nothing
    queue = not opts.preview and not off and not report.fields_missing
    if not opts.preview:  # turned off, it forgets what it cached
        scope: Sequence[str] | None = None  # the accounts the rules evaluate this run
        if cfg.enrichment.enabled:
            _, to_evaluate = evaluate_mod.run_scope(
                db, crm, cfg.rules, cfg.writeback, as_of=as_of, incremental=not opts.full,
                identity=cfg.identity, enrichment=cfg.enrichment, queued=queue,
            )  # fmt: skip
            scope = to_evaluate.account_ids
        report.enrichment = _enrich(cfg, db, crm, as_of, started, scope)
    # Evaluated and planned a chunk of accounts at a time, each chunk's writes queued in the
    # outbox as they are decided (`queue`), in the transaction that stores the flags: memory
    # does not grow with the org, and a run stopped half-way stores neither. Only the
    # accounts that can have changed (state/dirty.py); `--full` evaluates all.
    report.evaluation, the_plan = evaluate_mod.evaluate_and_plan(
        db, crm, cfg.rules, cfg.writeback, as_of=as_of, seen_at=started,
        store=not opts.preview, queue=queue, keep=opts.preview,  # a preview prints every write
        incremental=not opts.full, identity=cfg.identity, enrichment=cfg.enrichment,
    )  # fmt: skip
    # Values that are not crmsync's (a person's edit, a workflow's revert: W8/W9) are left
    # alone; the lifecycle records them, logs each once, and on HubSpot asks who set them.
    the_plan, report.conflicts = conflicts_mod.track(
        db, crm, the_plan, now=started,
        explain=connector.latest_changes,
        calls=lambda: int(connector.calls.total), store_rows=not opts.preview,
        evaluated=report.evaluation.scope.account_ids,
    )  # fmt: skip
    report.plan = the_plan
    if report.fields_missing:
        log.warning(
            "crmsync's fields are missing in the CRM; no write queued (run `crmsync setup`)",
            extra={"crm": crm, "fields": [f"{c.object}.{c.field}" for c in report.fields_missing]},
        )
        if not opts.preview:
            report.outcome = "failed"
            report.error = fields_missing_error(crm, report.fields_missing).line()
        return
    if opts.preview:
        report.held = the_plan.held_by_dead_rows
        return
    if off:
        report.writeback_off = True  # [writeback] enabled = false / dry_run = true: plan only
        return
    report.queued, report.held = the_plan.queued, the_plan.held_by_dead_rows
    if should_stop():
        report.outcome = "interrupted"
        return
    report.drain = drain_mod.drain(
        db, connector, crm,
        batch_size=connector.write_batch,
        max_attempts=cfg.writeback.max_attempts,
        should_stop=should_stop,
        sleep=sleep,  # backoff before sending again what the CRM refused for a moment
    )
    conflicts_mod.settle(db, crm, now=started)  # handed-back fields crmsync wrote
    if report.drain.aborted is not None:
        raise report.drain.aborted  # CRM unreachable mid-drain: rows stay pending; exit 3
    if report.rejected or report.held:
        report.outcome = "partial"


def _enrich(
    cfg: Config,
    db: sqlite_utils.Database,
    crm: str,
    as_of: datetime,
    started: datetime,
    accounts: Sequence[str] | None,
) -> enrichment_mod.EnrichmentReport | None:
    """Outside people-data for the accounts that need someone ([enrichment], off by default);
    the needs of `accounts` (those the rules evaluate this run; None: all) worked out again.
    A provider that cannot start is logged and skipped: the CRM's own suggestions still come."""
    try:
        return enrichment_mod.enrich(
            db, crm, cfg.rules, cfg.enrichment, as_of=as_of, now=started, accounts=accounts
        )
    except enrichment_mod.ProviderError as e:
        log.warning("enrichment provider could not start; skipped", extra={"crm": crm, "error": str(e)})
        return None


def _fields_missing(connector: Connector, writeback: WritebackSettings) -> list[FieldCheck]:
    """crmsync's fields the CRM lacks, as the pull saw them (the task key only matters
    when write-back creates tasks)."""
    missing = connector.owned_fields_missing()
    if not writeback.tasks:
        missing = [c for c in missing if not c.object.lower().startswith("task")]
    return missing


def fields_missing_error(crm: str, missing: list[FieldCheck]) -> FieldsMissing:
    """The one line a run ends with when crmsync's fields are missing in `crm`."""
    names = [f"{c.object}.{c.field}" for c in missing]
    shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    noun = "field is" if len(names) == 1 else "fields are"
    return FieldsMissing(
        f"{len(names)} of crmsync's {noun} missing: {shown}; no write was queued",
        crm=crm,
        operation="write-back",
        fields=tuple(names),
        fix=f"Run `crmsync setup --crm {crm}` to create them, then `crmsync sync` again.",
    )


def _counts(report: RunReport) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if report.pull is not None:
        out["pull"] = report.pull.counts()
    if report.reconcile is not None:
        out["reconcile"] = report.reconcile
    if report.evaluation is not None:
        out["flags"] = dict(report.evaluation.by_rule)
        scope = report.evaluation.scope
        out["evaluated"] = {"accounts": report.evaluation.evaluated, "scope": scope.reason,
                            "dirty": scope.dirty, "due": scope.due}  # fmt: skip
        if report.evaluation.changes is not None:
            out["flag_changes"] = report.evaluation.changes.counts
        out["coverage"] = dict(report.evaluation.coverage_counts())
    if report.plan is not None:
        out["plan"] = report.plan.counts()
    if report.drain is not None:
        out["writes"] = report.drain.counts()
    if report.queued or report.held:
        out["outbox"] = {"queued": report.queued, "held_by_dead_rows": report.held}
    c = report.conflicts
    if c is not None and not report.preview:
        out["conflicts"] = {"open": c.open, "new": len(c.new), "resolved": c.resolved,
                            "history_calls": c.history_calls}  # fmt: skip
    if report.retry_at is not None:  # a quota stop: the daemon waits until then (sync/daemon.py)
        out["quota_stop"] = {
            "retry_at": report.retry_at.astimezone(UTC).isoformat(),
            "code": report.quota_code,
        }
    return out


def _log_run(report: RunReport) -> None:
    log.info(
        "preview finished (nothing stored)" if report.preview else "run finished",
        extra={
            "crm": report.crm,
            "run_id": report.run_id,
            "mode": report.mode,
            "outcome": report.outcome,
            "records": report.pull.records if report.pull else 0,
            "api_calls": report.api_calls,
            "rejected": report.rejected,
            "seconds": round(report.seconds, 2),
        },
    )


def run_all(
    cfg: Config,
    *,
    crm: str | None,
    opts: RunOptions,
    echo: Callable[[str], None] = print,
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """The CLI's sync/plan: each enabled CRM in turn; the worst exit code wins.

    A CRM error that stops one CRM's run (its quota or crmsync's share of it,
    an outage, refused credentials) does not stop the others: that run's
    summary is printed with its line, the next CRM runs, and the error is
    raised at the end (the CLI prints it and exits 3). When `should_stop`
    turns true (Ctrl-C, SIGTERM) the current run stops at its next safe point
    and is recorded as interrupted, the CRMs after it are not started, and
    Interrupted is raised (exit 130).
    """

    crms = cfg.crms(crm)
    if not crms:
        raise ConfigError(
            f"no CRM is enabled in {cfg.path}: add a [salesforce] or [hubspot] table "
            "(or run `crmsync sandbox hubspot --write-config FILE` to get one)."
        )
    code = EXIT_OK
    missing: list[FieldsMissing] = []
    stops: list[CrmError] = []
    # A CRM whose rules waited for the other's first pull ([identity]) is queued again once
    # that pull is in: an incremental at the request floor, then its rules with both CRMs'
    # evidence. (A list grown while a for loop walks it: the loop reaches the new names.)
    queue = list(crms)
    for name in queue:
        progress = None
        if opts.progress and not opts.skip_pull:
            from .progress import RichProgress

            progress = RichProgress()
        try:
            rep = run_once(
                cfg, name, opts, progress=progress, should_stop=should_stop, keep_crm_error=True
            )
        finally:
            if progress is not None:
                progress.close()
        if rep.outcome == "interrupted":
            if rep.run_id:
                print_run(rep, echo=echo, dry_run=opts.preview)
            raise Interrupted(INTERRUPTED_LINE)
        print_run(rep, echo=echo, dry_run=opts.preview)
        code = max(code, rep.exit_code)
        if rep.waits_for in crms and queue.count(name) == 1 and rep.outcome == "ok":
            queue.append(name)
        if rep.stopped_by is not None:
            stops.append(rep.stopped_by)
        if rep.fields_missing:
            missing.append(fields_missing_error(name, rep.fields_missing))
        if should_stop() and name != queue[-1]:
            raise Interrupted(INTERRUPTED_LINE)  # the next CRM's run is not started
    if stops:
        # Every CRM had its run; the first stop is the line the CLI prints (exit 3), the
        # others are in their runs' summaries above.
        raise stops[0]
    if len(missing) == 1:
        raise missing[0]
    if missing:
        raise FieldsMissing(
            "crmsync's fields are missing in "
            + " and in ".join(f"{_CRM_NAMES.get(e.crm, e.crm)} ({len(e.fields)})" for e in missing)
            + "; no write was queued",
            fields=tuple(f for e in missing for f in e.fields),
            fix="Run `crmsync setup` to create them, then `crmsync sync` again.",
        )
    return code


_CRM_NAMES = {"salesforce": "Salesforce", "hubspot": "HubSpot"}


def setup_fields(
    cfg: Config, *, crm: str | None, dry_run: bool, echo: Callable[[str], None] = print
) -> int:
    """`crmsync setup`: check, and unless dry_run create, each CRM's owned fields.

    One line per field, one summary per CRM. Once every field exists, the
    outbox rows the CRM refused for want of a field (its missing-field error
    codes, `connector.is_missing_field_error`) go back to pending, and the
    next `crmsync sync` sends them.
    """
    code = EXIT_OK
    for name in cfg.crms(crm):
        connector = make_connector(name, cfg.connectors[name])
        connector.check()
        checks = connector.ensure_fields(dry_run=dry_run)
        for c in checks:
            echo(f"{name:<10} {c.object:<13} {c.field:<32} {c.status}" + (f"  ({c.detail})" if c.detail else ""))
        if any(c.status == "failed" for c in checks):
            code = EXIT_REJECTED
        missing = sum(c.status == "missing" for c in checks)
        created = sum(c.status == "created" for c in checks)
        failed = sum(c.status == "failed" for c in checks)
        there = len(checks) - created - missing - failed
        echo(
            f"{name}: {created} created, {missing} missing, {there} already there"
            + (f", {failed} failed" if failed else "")
        )
        ready = not missing and not failed
        if not dry_run:
            _forget_schema(cfg, name)
        refused = _refused_for_fields(cfg, name, connector, requeue=ready and not dry_run)
        if not refused:
            continue
        writes = f"{refused:,} write" + ("" if refused == 1 else "s")
        if dry_run:
            echo(f"{name}: {writes} the CRM refused for want of these fields would be requeued.")
        elif ready:
            echo(
                f"{name}: requeued {writes} the CRM had refused for want of these fields; "
                "the next `crmsync sync` sends them."
            )
        else:
            echo(
                f"{name}: {writes} the CRM refused for want of a field stay in the outbox "
                "until every field exists (`crmsync outbox`)."
            )
    return code


def _forget_schema(cfg: Config, crm: str) -> None:
    """Setup checked (and perhaps created) fields: the next run describes afresh instead of
    trusting the schema look-ups the mirror keeps (issue 14) for `schema_max_age_hours`."""
    if not cfg.mirror.path.exists():
        return
    db = open_db(cfg.mirror.path)
    try:
        schema_cache.forget(db, crm)
    finally:
        db.close()


def _refused_for_fields(cfg: Config, crm: str, connector: Connector, *, requeue: bool) -> int:
    """Dead and failed rows of `crm` refused for a missing field; requeued when `requeue`."""
    if not cfg.mirror.path.exists():
        return 0  # no mirror yet, so no outbox: nothing was ever refused
    db = open_db(cfg.mirror.path)
    try:
        ids = [
            row["id"]
            for row in outbox.list_items(db, ("dead", "failed"), crm=crm)
            if connector.is_missing_field_error(row["last_error_code"], row["last_error"])
        ]
        if requeue and ids:
            return outbox.requeue(db, crm=crm, ids=ids)
        return len(ids)
    finally:
        db.close()


def requeue_outbox(
    cfg: Config,
    *,
    code: str | None,
    crm: str | None,
    statuses: tuple[str, ...] = ("dead", "failed"),
    echo: Callable[[str], None] = print,
) -> int:
    """`crmsync outbox requeue`: refused rows (of one error code, or all) back to pending.

    A code no refused row carries is a usage error naming the codes there are
    (a typo must not look like "nothing to do").
    """

    db = _open(cfg)
    try:
        if code is not None:
            codes = {
                g.code for g in outbox.rejected_summary(db, crm) if g.status in statuses and g.code
            }
            if code not in codes:
                there = ", ".join(sorted(codes)) or "none"
                raise UsageError(
                    f"no {' or '.join(statuses)} row{f' of {crm}' if crm else ''} has the code "
                    f"{code!r}; the codes now: {there}",
                    fix="See `crmsync outbox` or `crmsync status`.",
                )
        n = outbox.requeue(db, crm=crm, statuses=statuses, codes=None if code is None else [code])
    finally:
        db.close()
    scope = ", ".join(p for p in (f"code {code}" if code else "", crm or "") if p)
    scope = f" ({scope})" if scope else ""
    if n:
        rows = "row" if n == 1 else "rows"
        echo(f"requeued {n:,} {rows}{scope}; the next `crmsync sync` sends them.")
    else:
        echo(f"nothing to requeue: no {' or '.join(statuses)} row{scope}.")
    return EXIT_OK
