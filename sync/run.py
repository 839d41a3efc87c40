"""One run per CRM: pull, rules, plan, drain — and `setup`.

    run_all(cfg, crm=None, opts)          the CLI's `sync` and `plan`
      run_once(cfg, crm, opts)            one CRM, under the mirror's writer lock
        pull.pull(...)                    connector pages -> mirror, page + cursor per commit
        evaluate.evaluate(...)            mirror -> rules -> flags (state)
        plan.plan(...) / plan.enqueue     flags + coverage -> outbox (diffed, guarded)
        drain.drain(...)                  outbox -> connector.write -> outbox marks

Every run is recorded in `runs` with its counts, API calls and outcome, also
when it fails; the exception then goes up to the CLI, which maps it to an exit
code.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors.errors import QuotaExhausted
from state import runs
from state.db import mirror_error, mirror_errors, open_db
from state.errors import (
    EXIT_CRM,
    EXIT_OK,
    EXIT_REJECTED,
    INTERRUPTED_LINE,
    Interrupted,
    MirrorBusy,
    error_line,
)
from state.lock import acquire_writer_lock

from . import evaluate as evaluate_mod
from . import plan as plan_mod
from . import pull as pull_mod
from .config import Config, ConfigError

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


@dataclass
class RunReport:
    crm: str
    run_id: int = 0
    mode: str = "incremental"
    outcome: str = "ok"
    pull: pull_mod.PullReport | None = None
    evaluation: evaluate_mod.Evaluation | None = None
    plan: Any = None
    drain: Any = None
    api_calls: int = 0
    api_by_operation: dict[str, int] = field(default_factory=dict)
    quota: tuple[int | None, int | None] | None = None
    error: str | None = None
    seconds: float = 0.0
    drifts: list[Any] = field(default_factory=list)  # written values the CRM no longer holds (W9)

    @property
    def rejected(self) -> int:
        return int(getattr(self.drain, "rejected", 0) or 0)

    @property
    def exit_code(self) -> int:
        if self.outcome in ("failed", "quota_exhausted"):
            return EXIT_CRM
        return EXIT_REJECTED if self.rejected else EXIT_OK


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


def make_connector(crm: str, settings: Any, **kw: Any) -> Any:
    from connectors import CONNECTORS

    return CONNECTORS[crm](settings, **kw)


def now_utc() -> datetime:
    return datetime.now(UTC)


def run_once(
    cfg: Config,
    crm: str,
    opts: RunOptions,
    *,
    connector: Any = None,
    should_stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], datetime] = now_utc,
    progress: pull_mod.Progress | None = None,
) -> RunReport:
    """One run for one CRM, holding the mirror's writer lock throughout."""
    settings = cfg.connectors[crm]
    mode = "plan" if opts.skip_pull else ("full" if opts.full else "incremental")
    if opts.reconcile:
        mode = "reconcile"
    report = RunReport(crm, mode=mode)
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
            runs.close_interrupted(db, started)
            report.run_id = runs.start(db, crm, mode, started)
            failing = False
            try:
                connector = connector or make_connector(crm, settings, sleep=sleep)
                _steps(cfg, db, crm, opts, connector, report, started, should_stop, progress)
            except Interrupted:
                report.outcome = "interrupted"
            except BaseException as e:
                failing = True
                err = mirror_error(e, path) or e
                if isinstance(e, KeyboardInterrupt):  # a second Ctrl-C / SIGTERM
                    report.outcome = "interrupted"
                else:
                    report.outcome = "quota_exhausted" if isinstance(e, QuotaExhausted) else "failed"
                report.error = error_line(err)  # the line the CLI prints, never a CRM body
                if err is not e:
                    raise err from e
                raise
            finally:
                if connector is not None:
                    report.api_calls = connector.calls.total
                    report.api_by_operation = dict(connector.calls.by_operation)
                    q = connector.quota() if hasattr(connector, "quota") else None
                    report.quota = (q.used, q.limit) if q is not None else None
                report.seconds = time.monotonic() - t0
                try:
                    runs.finish(
                        db, report.run_id, report.outcome, clock(),
                        counts=_counts(report), api_calls=report.api_calls,
                        api_by_operation=report.api_by_operation, quota=report.quota,
                        error=report.error,
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


def _steps(
    cfg: Config,
    db: Any,
    crm: str,
    opts: RunOptions,
    connector: Any,
    report: RunReport,
    started: datetime,
    should_stop: Callable[[], bool],
    progress: pull_mod.Progress | None,
) -> None:
    if not opts.skip_pull:
        connector.check()
        report.pull = pull_mod.pull(
            db, connector, full=opts.full, started_at=started,
            should_stop=should_stop, progress=progress, allow_empty=opts.allow_empty,
        )
        if report.pull.interrupted:
            report.outcome = "interrupted"
            return
        if opts.reconcile:
            from .reconcile import reconcile

            reconcile(db, connector, seen_at=started)
    if opts.pull_only:
        return
    from . import drain as drain_mod

    if not opts.skip_pull:
        # Read-after-write: the pull just re-read what earlier runs wrote.
        report.drifts = drain_mod.verify_landed(db, crm)
        for line in drain_mod.format_drifts(report.drifts):
            log.warning("written value not held by the CRM", extra={"crm": crm, "detail": line})
    as_of = opts.as_of or started
    report.evaluation = evaluate_mod.evaluate(db, crm, cfg.rules, as_of=as_of, seen_at=started)
    the_plan = plan_mod.plan(db, crm, report.evaluation.results, cfg.writeback, as_of=as_of)
    report.plan = the_plan
    if opts.dry_run:
        return
    if not getattr(cfg.writeback, "enabled", True):
        return
    plan_mod.enqueue(db, the_plan)
    if should_stop():
        report.outcome = "interrupted"
        return
    report.drain = drain_mod.drain(
        db, connector, crm,
        batch_size=200 if crm == "salesforce" else 100,
        max_attempts=cfg.writeback.max_attempts,
        should_stop=should_stop,
    )
    if report.drain.aborted is not None:
        raise report.drain.aborted  # CRM unreachable mid-drain: rows stay pending; exit 3
    if report.rejected:
        report.outcome = "partial"


def _counts(report: RunReport) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if report.pull is not None:
        out["pull"] = report.pull.counts()
    if report.evaluation is not None:
        out["flags"] = dict(report.evaluation.by_rule)
        if report.evaluation.changes is not None:
            out["flag_changes"] = report.evaluation.changes.counts
        out["coverage"] = dict(report.evaluation.coverage_counts())
    if report.plan is not None:
        out["plan"] = report.plan.counts()
    if report.drain is not None and hasattr(report.drain, "counts"):
        out["writes"] = report.drain.counts()
    return out


def _log_run(report: RunReport) -> None:
    log.info(
        "run finished",
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

    When `should_stop` turns true (Ctrl-C, SIGTERM) the current run stops at its
    next safe point and is recorded as interrupted, the CRMs after it are not
    started, and Interrupted is raised (exit 130).
    """
    from .report import print_run

    crms = cfg.crms(crm)
    if not crms:
        raise ConfigError(
            f"no CRM is enabled in {cfg.path}: add a [salesforce] or [hubspot] table "
            "(or run `crmsync sandbox hubspot --write-config FILE` to get one)."
        )
    code = EXIT_OK
    for name in crms:
        progress = None
        if opts.progress and not opts.skip_pull:
            from .progress import RichProgress

            progress = RichProgress()
        try:
            rep = run_once(cfg, name, opts, progress=progress, should_stop=should_stop)
        finally:
            if progress is not None:
                progress.close()
        if rep.outcome == "interrupted":
            if rep.run_id:
                print_run(rep, echo=echo, dry_run=opts.dry_run)
            raise Interrupted(INTERRUPTED_LINE)
        print_run(rep, echo=echo, dry_run=opts.dry_run)
        code = max(code, rep.exit_code)
        if should_stop() and name != crms[-1]:
            raise Interrupted(INTERRUPTED_LINE)  # the next CRM's run is not started
    return code


def setup_fields(
    cfg: Config, *, crm: str | None, dry_run: bool, echo: Callable[[str], None] = print
) -> int:
    """`crmsync setup`: check, and unless dry_run create, each CRM's owned fields."""
    code = EXIT_OK
    for name in cfg.crms(crm):
        connector = make_connector(name, cfg.connectors[name])
        connector.check()
        checks = connector.ensure_fields(dry_run=dry_run)
        for c in checks:
            echo(f"{name:<10} {c.object:<10} {c.field:<32} {c.status}" + (f"  ({c.detail})" if c.detail else ""))
        if any(c.status == "failed" for c in checks):
            code = EXIT_REJECTED
        missing = sum(c.status == "missing" for c in checks)
        created = sum(c.status == "created" for c in checks)
        echo(f"{name}: {created} created, {missing} missing, {len(checks) - created - missing} already there")
    return code
