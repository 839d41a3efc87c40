"""The daemon and the one-writer lock as an ops engineer meets them (issue 7, RELIABILITY O2, O3, O7).

`crmsync daemon` and `crmsync sync` run here as real subprocesses against the
sandbox CRMs served from this test process, so signals, exit codes, the flock
and stderr are the real ones. A latency fault on the Salesforce sandbox keeps a
run in progress long enough to signal it; the sandbox's request count tells
when it is. Scheduler behaviour (O3) runs an APScheduler BackgroundScheduler
configured by `Daemon.schedule`, with a fake job, on short real intervals.
/healthz and /metrics use a HealthServer on port 0 around an in-process Daemon.

Waiting on a subprocess or a scheduler needs real time: every wait here is a
bounded poll, never a fixed sleep that the assertion depends on.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.events import (
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from click.testing import CliRunner

from crmsync.sandbox.generate import generate
from crmsync.sandbox.hubspot import HubSpotSandbox
from crmsync.sandbox.salesforce import SalesforceSandbox
from crmsync.state.lock import acquire_writer_lock, lock_path_for
from crmsync.sync import config as config_mod
from crmsync.sync.cli import cli
from crmsync.sync.daemon import Daemon
from crmsync.sync.health import HealthServer

from . import helpers
from .conftest import Env

EXIT_WITHIN_SECONDS = 10.0


# ---------------------------------------------------------------- helpers


@dataclass
class SfEnv:
    """A Salesforce-only sync.toml in `dir` next to a running sandbox (the daemon's CRM)."""

    dir: Path
    config: Path
    sf: SalesforceSandbox
    dataset: dict[str, Any]

    def cli(self, *args: str, config: Path | None = None) -> Any:
        return CliRunner().invoke(
            cli, [*args, "--config", str(config or self.config)], catch_exceptions=False
        )

    @property
    def mirror(self) -> Path:
        return self.dir / "crmsync.db"


def _write_config(path: Path, body: str, *, mirror: str = "crmsync.db", schedule: str = "") -> None:
    schedule = schedule or 'incremental = "every 1 hours"\nfull = "off"\nreconcile = "off"\n'
    path.write_text(
        f'[mirror]\npath = "{mirror}"\n\n[schedule]\n{schedule}\n[daemon]\nhealth_port = 0\n\n'
        + body,
        encoding="utf-8",
    )


@pytest.fixture
def sf_env(tmp_path: Path) -> Iterator[SfEnv]:
    dataset = generate(seed=3, accounts=12)
    with SalesforceSandbox(dataset=dataset) as sf:
        table = tmp_path / "sf-table.toml"
        sf.write_config(table)
        config = tmp_path / "sync.toml"
        _write_config(config, table.read_text(encoding="utf-8"))
        env = SfEnv(tmp_path, config, sf, dataset)
        assert env.cli("setup").exit_code == 0  # crmsync's fields exist, as after install
        sf.requests.reset()  # tests read the count as "the run under test has started"
        yield env


def _spawn(env: SfEnv, *args: str, name: str) -> tuple[subprocess.Popen[bytes], Path]:
    """`crmsync ARGS --config X` as a subprocess; stdout and stderr go to one file."""
    out = env.dir / f"{name}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "crmsync.sync.cli", *args, "--config", str(env.config)],
        stdout=out.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=env.dir,
    )
    return proc, out


def _wait_for(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


def fresh_full_pull(env: SfEnv) -> Path:
    """Pull everything into a separate mirror (the FFP oracle); return its path."""
    fresh = env.dir / "fresh.toml"
    text = env.config.read_text(encoding="utf-8").replace(
        'path = "crmsync.db"', 'path = "fresh.db"', 1
    )
    fresh.write_text(text, encoding="utf-8")
    result = env.cli("sync", "--full", "--pull-only", config=fresh)
    assert result.exit_code == 0, result.output
    return env.dir / "fresh.db"


def assert_mirror_equals_fresh_full_pull(env: SfEnv) -> None:
    """FFP, after one more incremental: a run's own write-back reaches its mirror on the next pull."""
    catch_up = env.cli("sync")
    assert catch_up.exit_code == 0, catch_up.output
    fresh = fresh_full_pull(env)
    helpers.assert_same(
        helpers.snapshot(env.mirror, "salesforce"),
        helpers.snapshot(fresh, "salesforce"),
        names=("mirror", "fresh full pull"),
    )


def integrity(db_path: Path) -> str:
    con = sqlite3.connect(db_path)
    try:
        return str(con.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        con.close()


def runs(db_path: Path) -> list[dict[str, Any]]:
    con = sqlite3.connect(db_path)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM runs ORDER BY id")]
    finally:
        con.close()


def assert_no_overlap(run_rows: list[dict[str, Any]]) -> None:
    """No two runs of the mirror were in progress at the same time."""
    spans = sorted((r["started_at"], r["finished_at"], r["id"]) for r in run_rows)
    assert all(f is not None for _, f, _ in spans), spans
    for (_, f1, a), (s2, _, b) in zip(spans, spans[1:], strict=False):
        assert s2 >= f1, f"run {b} started at {s2} while run {a} ran until {f1}"


# ---------------------------------------------------------------- O7: SIGTERM / SIGINT


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_o7_signal_mid_pull_exits_0_within_10s_and_next_sync_resumes(
    sf_env: SfEnv, sig: signal.Signals
) -> None:
    sf_env.sf.faults.add(kind="latency", ms=250)
    daemon, log = _spawn(sf_env, "daemon", name="daemon")
    try:
        # The startup run is in progress once it has logged in and queried something.
        _wait_for(lambda: sf_env.sf.requests.count("query*") >= 2, 30, "the daemon's startup pull")
        assert daemon.poll() is None
        t0 = time.monotonic()
        daemon.send_signal(sig)
        code = daemon.wait(timeout=EXIT_WITHIN_SECONDS + 5)
        took = time.monotonic() - t0
    finally:
        _stop(daemon)
    out = _text(log)
    assert code == 0, out
    assert took <= EXIT_WITHIN_SECONDS, f"exit took {took:.1f}s"
    assert "daemon stopped" in out
    interrupted = runs(sf_env.mirror)
    assert [r["outcome"] for r in interrupted] == ["interrupted"], interrupted
    assert "stopping: finishing the current page or batch" in out
    # What was pulled before the signal was committed, not thrown away.
    assert helpers.snapshot(sf_env.mirror, "salesforce")["owners"], "no page was committed"

    sf_env.sf.faults.clear()
    result = sf_env.cli("sync")
    assert result.exit_code == 0, result.output
    assert runs(sf_env.mirror)[-1]["outcome"] == "ok"
    assert integrity(sf_env.mirror) == "ok"
    assert_mirror_equals_fresh_full_pull(sf_env)


def test_o7_sigterm_during_write_back_finishes_the_batch_and_never_duplicates_a_task(
    sf_env: SfEnv,
) -> None:
    sf_env.sf.faults.add(kind="latency", ms=250, route="composite*")
    daemon, log = _spawn(sf_env, "daemon", name="daemon")
    try:
        _wait_for(
            lambda: sf_env.sf.requests.count("composite*") >= 1, 60, "the first write-back batch"
        )
        t0 = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=EXIT_WITHIN_SECONDS + 5)
        took = time.monotonic() - t0
    finally:
        _stop(daemon)
    assert code == 0, _text(log)
    assert took <= EXIT_WITHIN_SECONDS

    sf_env.sf.faults.clear()
    assert sf_env.cli("sync").exit_code == 0
    assert sf_env.cli("sync").exit_code == 0
    keys = [
        t.get("Crmsync_Key__c")
        for t in sf_env.sf.records("Task")
        if t.get("Crmsync_Key__c") and not t.get("IsDeleted")
    ]
    assert keys, "write-back must have created tasks"
    assert len(keys) == len(set(keys)), "a task key appears twice in the CRM"
    assert integrity(sf_env.mirror) == "ok"


def test_o7_a_request_that_never_answers_cannot_hold_the_daemon_past_its_stop_timeout(
    sf_env: SfEnv,
) -> None:
    # The CRM stops answering mid-pull: the page in flight can never finish, so the
    # daemon gives up waiting after [daemon] stop_timeout_seconds and exits 130.
    text = sf_env.config.read_text(encoding="utf-8")
    sf_env.config.write_text(
        text.replace("[daemon]\n", "[daemon]\nstop_timeout_seconds = 2\n", 1), encoding="utf-8"
    )
    sf_env.sf.faults.add(kind="latency", ms=30_000, route="query*", nth=2)
    daemon, log = _spawn(sf_env, "daemon", name="daemon")
    try:
        _wait_for(lambda: sf_env.sf.requests.count("query*") >= 2, 60, "the held page request")
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=120)
    finally:
        _stop(daemon)
    out = _text(log)
    assert code == 130, out
    assert "did not stop within 2 s: stopping at once" in out, out
    assert "Traceback" not in out
    sf_env.sf.faults.clear()
    result = sf_env.cli("sync")
    assert result.exit_code == 0, result.output
    assert integrity(sf_env.mirror) == "ok"
    assert_mirror_equals_fresh_full_pull(sf_env)


def test_o7_sigterm_during_retry_backoff_stops_retrying_and_exits(sf_env: SfEnv) -> None:
    # Every query fails with 503: the connector backs off and retries.
    sf_env.sf.faults.add(kind="status", status=503, route="query*")
    daemon, log = _spawn(sf_env, "daemon", name="daemon")
    try:
        _wait_for(lambda: "retrying" in _text(log), 30, "the first retry")
        daemon.send_signal(signal.SIGTERM)
        # Done when the daemon exits, or when it starts another retry after being told to stop
        # (the next backoff alone can be longer than the 10 s O7 allows).
        _wait_for(
            lambda: daemon.poll() is not None or "retrying" in _text(log).partition("stopping:")[2],
            EXIT_WITHIN_SECONDS,
            "the exit or a retry after SIGTERM",
        )
        code = daemon.poll()
    finally:
        _stop(daemon)
    assert code == 0, f"still retrying after SIGTERM:\n{_text(log)[-2000:]}"


# ---------------------------------------------------------------- O2: one writer per mirror


def _waits_on_lock(proc: subprocess.Popen[bytes], lock: Path) -> bool:
    """True once `proc` has the mirror's lock file open: it is at (or past) the lock."""
    try:
        return any(os.readlink(fd) == str(lock) for fd in Path(f"/proc/{proc.pid}/fd").iterdir())
    except OSError:
        return False


def _hold_slow(env: SfEnv) -> None:
    """One second per sandbox request: the first writer holds the lock for the whole exchange."""
    env.sf.faults.clear()
    env.sf.faults.add(kind="latency", ms=1000)


def test_o2_second_full_sync_with_no_wait_exits_2_naming_the_lock_holder(sf_env: SfEnv) -> None:
    _hold_slow(sf_env)
    first, first_log = _spawn(sf_env, "sync", "--full", name="first")
    try:
        # The lock is taken before the first CRM call, so one request means it is held.
        _wait_for(lambda: sf_env.sf.requests.count() >= 1, 30, "the first sync to start")
        second, second_log = _spawn(sf_env, "sync", "--full", "--no-wait", name="second")
        assert second.wait(timeout=30) == 2
        assert first.poll() is None, "the first sync should still be running"
        sf_env.sf.faults.clear()  # let the first one finish quickly
        message = _text(second_log)
        assert "The mirror is busy" in message
        assert f"crmsync process {first.pid}" in message, message
        assert "--wait" in message
        assert first.wait(timeout=60) == 0, _text(first_log)
    finally:
        _stop(first)
    assert integrity(sf_env.mirror) == "ok"
    assert [r["outcome"] for r in runs(sf_env.mirror)] == ["ok"]


def test_o2_second_full_sync_with_wait_runs_after_the_first_without_overlap(sf_env: SfEnv) -> None:
    _hold_slow(sf_env)
    first, first_log = _spawn(sf_env, "sync", "--full", name="first")
    second: subprocess.Popen[bytes] | None = None
    try:
        _wait_for(lambda: sf_env.sf.requests.count() >= 1, 30, "the first sync to start")
        second, second_log = _spawn(sf_env, "sync", "--full", "--wait", name="second")
        _wait_for(
            lambda: _waits_on_lock(second, lock_path_for(sf_env.mirror)),
            30,
            "the second sync at the lock",
        )
        assert first.poll() is None, "the first sync should still hold the lock"
        sf_env.sf.faults.clear()
        assert first.wait(timeout=60) == 0, _text(first_log)
        assert second.wait(timeout=60) == 0, _text(second_log)
    finally:
        _stop(first)
        if second is not None:
            _stop(second)
    assert integrity(sf_env.mirror) == "ok"
    history = runs(sf_env.mirror)
    assert [r["outcome"] for r in history] == ["ok", "ok"]
    assert_no_overlap(history)
    assert_mirror_equals_fresh_full_pull(sf_env)


def test_o2_waiting_sync_says_whom_it_waits_for(sf_env: SfEnv) -> None:
    # This test process holds the writer lock, as a running sync would.
    waiting: subprocess.Popen[bytes] | None = None
    try:
        with acquire_writer_lock(sf_env.mirror, wait=False):
            waiting, log = _spawn(sf_env, "sync", "--wait", name="waiting")
            _wait_for(
                lambda: str(os.getpid()) in _text(log), 4, "a message naming the lock holder's pid"
            )
            assert waiting.poll() is None, _text(log)
        assert waiting.wait(timeout=60) == 0, _text(log)
    finally:
        if waiting is not None:
            _stop(waiting)


def test_o2_manual_sync_while_the_daemon_runs_exits_with_a_clear_message(sf_env: SfEnv) -> None:
    _hold_slow(sf_env)
    daemon, log = _spawn(sf_env, "daemon", name="daemon")
    try:
        _wait_for(lambda: sf_env.sf.requests.count() >= 1, 30, "the daemon's startup run")
        manual, manual_log = _spawn(sf_env, "sync", "--full", "--no-wait", name="manual")
        assert manual.wait(timeout=30) == 2, _text(manual_log)[-2000:] + _text(log)[-2000:]
        assert f"crmsync process {daemon.pid}" in _text(manual_log)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=EXIT_WITHIN_SECONDS + 5) == 0, _text(log)
    finally:
        _stop(daemon)
    assert integrity(sf_env.mirror) == "ok"


# ---------------------------------------------------------------- O3: late triggers


@pytest.fixture(scope="module")
def two_crm_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sync.toml naming both CRMs; the scheduler tests never call them, so the sandboxes stop."""
    path = tmp_path_factory.mktemp("o3") / "sync.toml"
    dataset = generate(seed=1, accounts=2)
    with SalesforceSandbox(dataset=dataset) as sf, HubSpotSandbox(dataset=dataset) as hs:
        sf.write_config(path)
        hs.write_config(path)
    path.write_text('[mirror]\npath = "crmsync.db"\n\n' + path.read_text(encoding="utf-8"))
    return path


def _daemon_for(config: Path, **schedule: Any) -> Daemon:
    cfg = config_mod.load(config)
    cfg = replace(cfg, schedule=replace(cfg.schedule, **schedule))
    return Daemon(config, cfg)


def test_o3_jobs_have_misfire_grace_coalesce_and_one_instance(two_crm_config: Path) -> None:
    daemon = _daemon_for(
        two_crm_config,
        incremental="every 15 minutes",
        full="cron: 0 3 * * sun",
        reconcile="cron: 0 4 * * sat",
        misfire_grace_seconds=321,
    )
    scheduler = BackgroundScheduler(timezone=UTC)
    daemon.schedule(scheduler)
    jobs = {j.id: j for j in scheduler.get_jobs()}
    expected = {
        f"{crm}:{kind}"
        for crm in ("salesforce", "hubspot")
        for kind in ("incremental", "full", "reconcile")
    }
    assert expected <= set(jobs)
    for job_id in expected:
        job = jobs[job_id]
        assert job.misfire_grace_time == 321, job_id
        assert job.coalesce is True, job_id
        assert job.max_instances == 1, job_id


def test_o3_off_turns_a_job_off(two_crm_config: Path) -> None:
    daemon = _daemon_for(two_crm_config, full="off", reconcile="off")
    scheduler = BackgroundScheduler(timezone=UTC)
    daemon.schedule(scheduler)
    assert {j.id for j in scheduler.get_jobs()} == {
        "salesforce:incremental",
        "hubspot:incremental",
        "config-watch",
    }


class _Recorder:
    """A fake Daemon.run_job: records (crm, kind) and can block one CRM's first run."""

    def __init__(self, block_crm: str | None = None, block_seconds: float = 0.0) -> None:
        self.calls: list[tuple[str, str, float]] = []
        self.block_crm, self.block_seconds = block_crm, block_seconds
        self._lock = threading.Lock()

    def __call__(self, crm: str, kind: str) -> None:
        with self._lock:
            first = not any(c == crm for c, _, _ in self.calls)
            self.calls.append((crm, kind, time.monotonic()))
        if crm == self.block_crm and first:
            threading.Event().wait(self.block_seconds)  # the busy executor

    def count(self, crm: str) -> int:
        with self._lock:
            return sum(c == crm for c, _, _ in self.calls)


def _run_scheduler(daemon: Daemon, recorder: _Recorder, seconds: float) -> list[Any]:
    """The daemon's schedule on a single-worker executor (as serve() builds it), for `seconds`."""
    events: list[Any] = []
    scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor(1)}, timezone=UTC)
    daemon.run_job = recorder  # type: ignore[method-assign]  # schedule() binds self.run_job
    daemon.schedule(scheduler)
    scheduler.add_listener(
        events.append, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
    )
    scheduler.start()
    try:
        threading.Event().wait(seconds)
    finally:
        scheduler.shutdown(wait=True)
    return events


def test_o3_late_run_behind_a_busy_executor_runs_and_an_overlapping_trigger_is_skipped(
    two_crm_config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Both incrementals fire at t=1 s; salesforce's run occupies the only worker for 2 s,
    # so hubspot's starts ~2 s late: more than APScheduler's default grace of 1 s (O3).
    # Salesforce's own trigger at t=2 s finds it still running: skipped and logged, not
    # run twice at once (O2); its schedule goes on afterwards.
    daemon = _daemon_for(two_crm_config, incremental="every 1 seconds", full="off", reconcile="off")
    recorder = _Recorder(block_crm="salesforce", block_seconds=2.0)
    with caplog.at_level("WARNING", logger="apscheduler"):
        events = _run_scheduler(daemon, recorder, 4.6)
    assert [e.job_id for e in events if e.code == EVENT_JOB_MISSED] == []
    ran = [e for e in events if isinstance(e, JobExecutionEvent) and e.code == EVENT_JOB_EXECUTED]
    assert "hubspot:incremental" in [e.job_id for e in ran], recorder.calls
    skipped = [e.job_id for e in events if e.code == EVENT_JOB_MAX_INSTANCES]
    assert "salesforce:incremental" in skipped
    assert "maximum number of running instances reached" in caplog.text
    assert recorder.count("salesforce") >= 2, recorder.calls


def test_o3_control_default_grace_would_drop_the_late_run(two_crm_config: Path) -> None:
    """The same scenario with APScheduler's default grace (1 s) loses hubspot's run: the test above has teeth."""
    daemon = _daemon_for(
        two_crm_config,
        incremental="every 1 seconds",
        full="off",
        reconcile="off",
        misfire_grace_seconds=1,
    )
    recorder = _Recorder(block_crm="salesforce", block_seconds=2.0)
    events = _run_scheduler(daemon, recorder, 2.6)
    assert "hubspot:incremental" in [e.job_id for e in events if e.code == EVENT_JOB_MISSED]


def test_o3_triggers_missed_while_suspended_coalesce_into_one_run(two_crm_config: Path) -> None:
    # A paused scheduler stands in for a suspended process: on resume, the due
    # run times of each job collapse into one run (coalesce), none is dropped.
    daemon = _daemon_for(two_crm_config, incremental="every 1 seconds", full="off", reconcile="off")
    recorder = _Recorder()
    scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor(1)}, timezone=UTC)
    daemon.run_job = recorder  # type: ignore[method-assign]
    daemon.schedule(scheduler)
    scheduler.start(paused=True)
    try:
        threading.Event().wait(2.2)  # two trigger times pass while nothing runs
        scheduler.resume()
        _wait_for(
            lambda: recorder.count("salesforce") and recorder.count("hubspot"),
            3,
            "the resumed runs",
        )
        counts = {crm: recorder.count(crm) for crm in ("salesforce", "hubspot")}
    finally:
        scheduler.shutdown(wait=True)
    assert counts == {"salesforce": 1, "hubspot": 1}, recorder.calls


# ---------------------------------------------------------------- /healthz and /metrics


def _get(url: str) -> tuple[int, str]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture
def health(env: Env) -> Iterator[tuple[Daemon, str]]:
    assert env.cli("setup").exit_code == 0
    daemon = Daemon(env.config, config_mod.load(env.config))
    server = HealthServer("127.0.0.1", 0, daemon.metrics, daemon.health).start()
    try:
        yield daemon, f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


def test_healthz_and_metrics_follow_the_daemons_runs(health: tuple[Daemon, str]) -> None:
    daemon, url = health
    status, body = _get(url + "/healthz")
    assert status == 503, "no run yet"
    data = json.loads(body)
    assert data["ok"] is False and data["crms"]["salesforce"]["last_success"] is None

    assert daemon.run_job("salesforce", "full").outcome == "ok"
    assert _get(url + "/healthz")[0] == 503, "hubspot has not synced yet"

    assert daemon.run_job("hubspot", "incremental").outcome == "ok"
    status, body = _get(url + "/healthz")
    assert status == 200, body
    data = json.loads(body)
    assert data["ok"] is True
    for crm in ("salesforce", "hubspot"):
        assert data["crms"][crm]["last_success"] is not None
        assert 0 <= data["crms"][crm]["age_seconds"] < 60
        assert data["crms"][crm]["last_outcome"] == "ok"
    assert set(data["outbox"]) >= {"pending", "dead"}
    assert all(isinstance(n, int) for n in data["outbox"].values())

    status, text = _get(url + "/metrics")
    assert status == 200
    for name in (
        "crmsync_runs_total",
        "crmsync_api_calls_total",
        "crmsync_flags",
        "crmsync_outbox_rows",
        "crmsync_records_pulled_total",
    ):
        assert name in text, name
    lines = text.splitlines()
    runs_line = next(
        line
        for line in lines
        if line.startswith("crmsync_runs_total{") and 'crm="salesforce"' in line
    )
    assert 'kind="full"' in runs_line and 'outcome="ok"' in runs_line
    assert float(runs_line.rsplit(" ", 1)[1]) == 1.0
    calls = next(
        line for line in lines if line.startswith('crmsync_api_calls_total{crm="salesforce"}')
    )
    assert float(calls.rsplit(" ", 1)[1]) > 0
    assert 'crmsync_flags{crm="salesforce"' in text and 'crmsync_flags{crm="hubspot"' in text

    # Default schedule: every 15 minutes; 3 intervals (45 minutes) without success is stale.
    finished = max(json.loads(_get(url + "/healthz")[1])["crms"][c]["last_success"] for c in ("salesforce", "hubspot"))
    later = datetime.fromisoformat(finished) + timedelta(minutes=46)
    daemon.clock = lambda: later
    status, body = _get(url + "/healthz")
    assert status == 503
    assert json.loads(body)["crms"]["salesforce"]["age_seconds"] >= 46 * 60


# ---------------------------------------------------------------- a scheduled run meets a transient login error


def test_a_5xx_at_salesforce_login_is_retried(sf_env: SfEnv) -> None:
    """A transient 503 at login is retried, not reported as bad credentials (found by the soak)."""
    sf_env.sf.faults.add(kind="status", status=503, route="login", nth=1)
    daemon = Daemon(sf_env.config, config_mod.load(sf_env.config))
    result = daemon.run_job("salesforce", "incremental")
    assert result.outcome == "ok", result.error


# ---------------------------------------------------------------- SIGHUP


def test_sighup_reloads_the_config_and_a_bad_one_is_refused(sf_env: SfEnv) -> None:
    daemon, log = _spawn(sf_env, "daemon", name="daemon")
    try:
        _wait_for(lambda: "run finished" in _text(log), 60, "the startup run to finish")
        original = sf_env.config.read_text(encoding="utf-8")
        sf_env.config.write_text(
            original.replace("every 1 hours", "every 2 hours"), encoding="utf-8"
        )
        daemon.send_signal(signal.SIGHUP)
        _wait_for(lambda: "config reloaded" in _text(log), 10, "'config reloaded'")

        sf_env.config.write_text(original + "\n[schedule.bogus]\n", encoding="utf-8")
        daemon.send_signal(signal.SIGHUP)
        _wait_for(lambda: "config reload failed" in _text(log), 10, "'config reload failed'")
        assert daemon.poll() is None, "a bad config on reload must not stop the daemon"

        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=EXIT_WITHIN_SECONDS) == 0, _text(log)
    finally:
        _stop(daemon)


def test_sighup_with_an_invalid_schedule_keeps_the_daemon_running(sf_env: SfEnv) -> None:
    daemon, log = _spawn(sf_env, "daemon", name="daemon")
    try:
        _wait_for(lambda: "run finished" in _text(log), 60, "the startup run to finish")
        original = sf_env.config.read_text(encoding="utf-8")
        sf_env.config.write_text(
            original.replace("every 1 hours", "every banana"), encoding="utf-8"
        )
        daemon.send_signal(signal.SIGHUP)
        _wait_for(
            lambda: "reload" in _text(log) or daemon.poll() is not None,
            10,
            "the reload to be handled",
        )
        assert daemon.poll() is None, _text(log)[-2000:]
        assert "config reload failed" in _text(log)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=EXIT_WITHIN_SECONDS) == 0, _text(log)
    finally:
        _stop(daemon)


def test_o7_sigterm_while_the_daemon_waits_for_the_writer_lock_exits_at_once(
    sf_env: SfEnv,
) -> None:
    # A manual `crmsync sync --full` (here: this test process) holds the mirror; the
    # daemon's startup run waits for the lock ([daemon] lock = "wait", up to an hour).
    # A lock wait has no page or batch to finish, so 3 s (inside O7's 10 s) is plenty.
    with acquire_writer_lock(sf_env.mirror, wait=False):
        daemon, log = _spawn(sf_env, "daemon", name="daemon")
        try:
            _wait_for(
                lambda: _waits_on_lock(daemon, lock_path_for(sf_env.mirror)),
                30,
                "the daemon's run at the lock",
            )
            t0 = time.monotonic()
            daemon.send_signal(signal.SIGTERM)
            try:
                code: int | None = daemon.wait(timeout=3)
            except subprocess.TimeoutExpired:
                code = None
            took = time.monotonic() - t0
        finally:
            _stop(daemon)
    assert code == 0, f"exit code {code} after {took:.1f}s\n{_text(log)[-2000:]}"
    assert sf_env.sf.requests.count() == 0, "the daemon must not have touched the CRM"
