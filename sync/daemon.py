"""`crmsync daemon`: the scheduled service.

One APScheduler 3.x BlockingScheduler with, per enabled CRM, an incremental
sync, a full resync and a delete reconciliation on the `[schedule]` triggers.
Every job has max_instances=1, coalesce=True and a misfire grace time (the
default of 1 s silently drops late runs, RELIABILITY O3). Jobs run one at a
time on a single worker: they share the mirror, whose writer lock also keeps
a manual `crmsync sync` out while a job runs (and the job out while it runs).

SIGTERM / SIGINT: the running job finishes its current page or batch, commits
and returns; the daemon exits 0 (O7). SIGHUP, or a change of sync.toml's
modification time, reloads the config and reschedules. A broad `except` sits
here, at the job boundary, and nowhere else: a failed run is logged with its
traceback and recorded, and the daemon keeps its schedule.

A quota stop is not a failure: the CRM's daily allocation, or crmsync's share
of it (`max_daily_share`), is used up and the run stopped cleanly with a time
to retry. It is logged once at WARNING without a traceback, and that CRM's jobs are
skipped until then, logged once at INFO ("salesforce: API share used up; next
run after 2026-12-08 00:00 UTC"), spending no login and no API call.
The retry time is read from the mirror's run history (the stopped run's
`quota_stop`), so a restarted daemon waits too, and a manual `crmsync sync`
that succeeds meanwhile ends the wait.

Health (/healthz, `health`): a CRM is healthy when its last successful sync
(incremental, full or reconcile; never a preview) is younger than the
staleness limit (three incremental intervals, or a day for cron schedules).
A CRM waiting for its quota is healthy until its retry time and for one
staleness limit after it, and says `waiting_for_quota_until`: crmsync stopped
on purpose, and restarting or paging someone would not bring the quota back.
A CRM still without a successful sync by then is unhealthy.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from crmsync.state.errors import EXIT_INTERRUPTED, QuotaExhausted, error_line

from . import config as config_mod
from .config import Config, ConfigError
from .health import HealthServer, Metrics
from .run import RunOptions, run_once

log = logging.getLogger(__name__)

KINDS = ("incremental", "full", "reconcile")
_EVERY = re.compile(r"^\s*every\s+(\d+)\s*(second|minute|hour|day)s?\s*$", re.I)


def parse_trigger(spec: str, where: str) -> Any:
    """`every 15 minutes` -> IntervalTrigger; `cron: 0 3 * * sun` -> CronTrigger; `off` -> None."""
    s = spec.strip()
    if s.lower() in ("off", "never", ""):
        return None
    m = _EVERY.match(s)
    if m:
        n, unit = int(m.group(1)), m.group(2).lower()
        if n <= 0:
            raise ConfigError(f"{where}: the interval must be positive, not {spec!r}.")
        return IntervalTrigger(**{f"{unit}s": n}, timezone=UTC)
    if s.lower().startswith("cron:"):
        try:
            return CronTrigger.from_crontab(s[5:].strip(), timezone=UTC)
        except ValueError as e:
            raise ConfigError(f"{where}: {spec!r} is not a crontab expression ({e}).") from None
    raise ConfigError(
        f"{where}: {spec!r} is neither `every N minutes|hours|seconds|days`, `cron: m h dom mon dow` nor `off`."
    )


@dataclass
class JobResult:
    crm: str
    kind: str
    outcome: str
    error: str | None = None


class Daemon:
    def __init__(
        self,
        config_path: Path,
        cfg: Config,
        *,
        clock: Callable[[], datetime] | None = None,
        as_of: Callable[[], datetime] | None = None,
    ) -> None:
        """`clock` reads the time for health; `as_of`, when given, fixes the time the
        rules evaluate at for each job (tests inject both; in service both are now)."""
        self.config_path = config_path
        self.cfg = cfg
        self.stop_event = threading.Event()
        self.metrics = Metrics()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.as_of = as_of
        self.scheduler: BlockingScheduler | None = None
        self.health_server: HealthServer | None = None
        self._mtime = _mtime(config_path)
        self.history: deque[JobResult] = deque(maxlen=100)  # recent jobs, for tests and debugging
        self._told_waiting: dict[str, datetime] = {}  # crm -> the retry time already logged

    # ------------------------------------------------------------ one job

    def run_job(self, crm: str, kind: str) -> JobResult:
        """Run one scheduled job now (the scheduler calls this; so can tests)."""
        if self.stop_event.is_set():
            return JobResult(crm, kind, "skipped")
        wait = self._quota_wait(crm)
        if wait is not None:
            # The CRM's quota (or crmsync's share of it) is used up until wait.until: no
            # run, so no login and no API call, until then.
            if self._told_waiting.get(crm) != wait.until:
                self._told_waiting[crm] = wait.until
                log.info(
                    f"{crm}: {wait.what}; next run after {_utc(wait.until)}",
                    extra={"crm": crm, "kind": kind, "retry_at": wait.until.isoformat()},
                )
            result = JobResult(crm, kind, "waiting_for_quota", wait.error)
            self.history.append(result)
            return result
        opts = RunOptions(
            full=kind == "full",
            reconcile=kind == "reconcile",
            wait=True,
            as_of=self.as_of() if self.as_of is not None else None,
        )
        try:
            rep = run_once(self.cfg, crm, opts, should_stop=self.stop_event.is_set)
            self.metrics.observe_run(kind, rep)
            result = JobResult(crm, kind, rep.outcome, rep.error)
        except QuotaExhausted as e:  # a clean stop with a retry time, not a failure
            when = f"next run after {_utc(e.retry_at)}" if e.retry_at else "next run as scheduled"
            log.warning(
                f"{crm}: {_quota_words(e.code)}; the run stopped cleanly, {when}",
                extra={"crm": crm, "kind": kind, "code": e.code,
                       "retry_at": e.retry_at.isoformat() if e.retry_at else None},
            )  # fmt: skip
            self.metrics.runs.labels(crm, kind, "quota_exhausted").inc()
            result = JobResult(crm, kind, "quota_exhausted", error_line(e))
        except Exception as e:  # the job boundary: log, record, keep the schedule
            # The traceback goes to the log; the one line (as the CLI prints it) is what
            # the job's result and /healthz carry.
            log.exception("run failed", extra={"crm": crm, "kind": kind})
            self.metrics.runs.labels(crm, kind, "failed").inc()
            result = JobResult(crm, kind, "failed", error_line(e))
        self.history.append(result)
        self._refresh_state_metrics()
        return result

    def _refresh_state_metrics(self) -> None:
        try:
            from crmsync.state import flags, outbox
            from crmsync.state.db import open_db

            db = open_db(self.cfg.mirror.path)
            try:
                rejected = {crm: sum(outbox.depth(db, crm).get(s, 0) for s in ("failed", "dead")) for crm in self.cfg.connectors}
                counts = {crm: flags.status_counts(db, crm) for crm in self.cfg.connectors}
                self.metrics.observe_state(counts, outbox.depth(db), rejected)
            finally:
                db.close()
        except Exception:  # metrics must never take the daemon down
            log.warning("could not refresh metrics", exc_info=True)

    # ------------------------------------------------------------ health

    def health(self) -> tuple[bool, dict[str, Any]]:
        """ok when every enabled CRM has a successful sync younger than `stale_after`, or
        waits for its quota (module docstring).

        Read from the mirror's run history, so a restarted daemon reports truthfully.
        """
        from crmsync.state import outbox, runs
        from crmsync.state.db import open_db

        now = self.clock()
        stale_after = self._stale_after_seconds()
        body: dict[str, Any] = {"ok": True, "crms": {}}
        try:
            db = open_db(self.cfg.mirror.path)
        except Exception as e:
            return False, {"ok": False, "error": error_line(e)}
        try:
            for crm in self.cfg.connectors:
                recent = _syncs(runs.last_runs(db, 50, crm=crm))
                last = recent[0] if recent else None
                success = next((r for r in recent if r["outcome"] in ("ok", "partial")), None)
                at = success["finished_at"] if success else None
                age = (now - at).total_seconds() if at else None
                fresh = age is not None and age <= stale_after
                stop = _quota_stop(last)
                waiting = stop is not None and now < stop.until
                excused = stop is not None and (now - stop.until).total_seconds() <= stale_after
                body["crms"][crm] = {
                    "healthy": fresh or excused,
                    "last_success": at,
                    "age_seconds": None if age is None else round(age),
                    "last_outcome": last["outcome"] if last else None,
                    "last_error": last["error"] if last else None,
                    "waiting_for_quota_until": stop.until if stop and waiting else None,
                }
                body["ok"] = body["ok"] and (fresh or excused)
            body["outbox"] = outbox.depth(db)
        finally:
            db.close()
        return bool(body["ok"]), body

    def _quota_wait(self, crm: str) -> _QuotaStop | None:
        """The quota stop `crm` waits out now (its last sync stopped with a retry time ahead)."""
        from crmsync.state import runs
        from crmsync.state.db import open_db

        if not self.cfg.mirror.path.exists():
            return None
        try:
            db = open_db(self.cfg.mirror.path)
        except Exception:  # the run itself will say what is wrong with the mirror
            return None
        try:
            recent = _syncs(runs.last_runs(db, 10, crm=crm))
        finally:
            db.close()
        stop = _quota_stop(recent[0] if recent else None)
        return stop if stop is not None and self.clock() < stop.until else None

    def _stale_after_seconds(self) -> float:
        """Three incremental intervals (or a day for cron schedules) without success is unhealthy."""
        trig = parse_trigger(self.cfg.schedule.incremental, "[schedule] incremental")
        interval = getattr(trig, "interval", None)
        return 3 * interval.total_seconds() if interval is not None else 86400.0

    # ------------------------------------------------------------ schedule

    def schedule(self, scheduler: Any) -> None:
        grace = self.cfg.schedule.misfire_grace_seconds
        for crm in self.cfg.connectors:
            for kind in KINDS:
                trigger = parse_trigger(getattr(self.cfg.schedule, kind), f"[schedule] {kind}")
                if trigger is None:
                    continue
                scheduler.add_job(
                    self.run_job, trigger, args=(crm, kind), id=f"{crm}:{kind}",
                    name=f"{kind} sync of {crm}", max_instances=1, coalesce=True,
                    misfire_grace_time=grace, replace_existing=True,
                )
        scheduler.add_job(self._check_reload, IntervalTrigger(seconds=30), id="config-watch",
                          max_instances=1, coalesce=True, replace_existing=True)

    def reload(self) -> None:
        try:
            cfg = config_mod.load(self.config_path)
            for kind in KINDS:  # validate before swapping anything
                parse_trigger(getattr(cfg.schedule, kind), f"[schedule] {kind}")
        except ConfigError as e:
            log.error("config reload failed; keeping the running config", extra={"error": str(e)})
            return
        self.cfg = cfg
        if self.scheduler is not None:
            for job in self.scheduler.get_jobs():
                if job.id != "config-watch":
                    job.remove()
            self.schedule(self.scheduler)
        log.info("config reloaded", extra={"path": str(self.config_path)})

    def _check_reload(self) -> None:
        m = _mtime(self.config_path)
        if m != self._mtime:
            self._mtime = m
            self.reload()

    def stop(self, *_: Any) -> None:
        if self.stop_event.is_set():
            return
        log.info("stopping: finishing the current page or batch")
        self.stop_event.set()
        if self.scheduler is not None:
            threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": True}, daemon=True).start()
            timeout = self.cfg.daemon.stop_timeout_seconds
            if timeout:
                watchdog = threading.Timer(timeout, self._stop_now, args=(timeout,))
                watchdog.daemon = True
                watchdog.start()

    def _stop_now(self, timeout: float) -> None:
        """`[daemon] stop_timeout_seconds` passed and the job still runs (a CRM request that
        does not answer): exit now. Safe by design: the open page or batch rolls back with
        its transaction, and a write whose answer was not recorded is looked up by its key
        on the next run (RELIABILITY W4, W5)."""
        log.error(
            "did not stop within %d s: stopping at once; the page or batch in flight is "
            "rolled back and the next run picks up from the last commit",
            timeout,
        )
        logging.shutdown()
        os._exit(EXIT_INTERRUPTED)

    def serve(self, *, install_signals: bool = True) -> int:
        self.scheduler = BlockingScheduler(
            executors={"default": ThreadPoolExecutor(1)}, timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1},
        )
        self.schedule(self.scheduler)
        if self.cfg.daemon.health_port:
            self.health_server = HealthServer(
                self.cfg.daemon.health_host, self.cfg.daemon.health_port, self.metrics, self.health
            ).start()
        if install_signals:
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)
            signal.signal(signal.SIGHUP, lambda *_: self.reload())
        # A first incremental run at start, so a restarted daemon catches up at once.
        for crm in self.cfg.connectors:
            self.scheduler.add_job(self.run_job, args=(crm, "incremental"), id=f"{crm}:startup",
                                   max_instances=1, coalesce=True, misfire_grace_time=None)
        log.info("daemon started", extra={"crms": list(self.cfg.connectors)})
        try:
            self.scheduler.start()
        finally:
            if self.health_server is not None:
                self.health_server.stop()
        log.info("daemon stopped")
        return 0


@dataclass(frozen=True)
class _QuotaStop:
    until: datetime  # the retry time the CRM (or crmsync's share) gave
    what: str  # "API share used up" | "daily API limit used up"
    error: str | None  # the stopped run's one line


def _syncs(recent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Syncs only (incremental, full, reconcile): never a preview an older crmsync recorded."""
    return [r for r in recent if r["mode"] in KINDS]


def _quota_stop(run: dict[str, Any] | None) -> _QuotaStop | None:
    """The quota stop that ended `run`, if it did and said when to retry."""
    if run is None or run["outcome"] != "quota_exhausted":
        return None
    stop = (run.get("counts") or {}).get("quota_stop") or {}
    try:
        until = datetime.fromisoformat(str(stop["retry_at"]))
    except (KeyError, TypeError, ValueError):
        return None
    until = until if until.tzinfo else until.replace(tzinfo=UTC)
    return _QuotaStop(until, _quota_words(stop.get("code")), run.get("error"))


def _quota_words(code: str | None) -> str:
    return "API share used up" if code == "MAX_DAILY_SHARE" else "daily API limit used up"


def _utc(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def run_daemon(config_path: Path, cfg: Config, *, log_format: str | None = None) -> int:
    if not cfg.connectors:
        raise ConfigError(f"no CRM is enabled in {config_path}: the daemon would have nothing to do.")
    for kind in KINDS:
        parse_trigger(getattr(cfg.schedule, kind), f"[schedule] {kind}")  # fail fast at start
    return Daemon(config_path, cfg).serve()
