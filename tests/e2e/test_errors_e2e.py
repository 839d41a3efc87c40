"""What a user meets when something goes wrong (issue 10, section 1): one line, a documented exit code.

Every failure ends with one `crmsync: ...` line on stderr that names the thing
(the setting, the file, the request) and the fix, an exit code from the one
table (state/errors.py: 2 local problem, 3 CRM problem, 130 interrupted), no
traceback, and nothing lost or changed: a damaged mirror is refused byte for
byte, a full disk keeps only whole pages, an interrupted sync resumes to the
same mirror as an uninterrupted one.

crmsync runs as a subprocess where the operating system is part of the case
(signals, a file-size limit standing in for a full disk, a read-only mount, a
lock held by another process) and through click's CliRunner elsewhere. The
CRMs are the loopback sandboxes; a dead CRM is a closed loopback port.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3.util.connection
from click.testing import CliRunner, Result

from crmsync.connectors.retry import DEFAULT_POLICY
from crmsync.sandbox.generate import generate
from crmsync.sandbox.hubspot import HubSpotSandbox
from crmsync.state.db import open_db
from crmsync.state.lock import acquire_writer_lock
from crmsync.sync import config
from crmsync.sync.cli import cli
from crmsync.sync.daemon import Daemon
from crmsync.sync.run import RunOptions, run_once

from .conftest import AS_OF
from .helpers import (
    ROOT,
    Gate,
    Spawned,
    assert_one_error_line,
    assert_same,
    counts,
    crmsync,
    error_lines,
    file_digest,
    runs,
    snapshot,
    wait_until,
    write_sync_toml,
)

HS_DATA = generate(seed=22, accounts=150, crms=("hubspot",))  # ~1,500 contacts: 8 search pages
HS_EXTRA = "requests_per_10s = 1000\nsearches_per_second = 100"
PERSONAL = "jane.doe@example.com"  # what a CRM error body may echo; never in a line or a log


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """`crmsync ARGS` through click's runner; stderr is kept apart from stdout."""
    return CliRunner().invoke(cli, list(args), env=env)



@pytest.fixture(scope="module")
def portal() -> Iterator[tuple[HubSpotSandbox, Gate]]:
    gate = Gate()
    with HubSpotSandbox(dataset=HS_DATA, sleep=gate) as hs:
        yield hs, gate


@pytest.fixture
def hs(portal: tuple[HubSpotSandbox, Gate]) -> Iterator[HubSpotSandbox]:
    sandbox, gate = portal
    sandbox.reset(faults=True)
    gate.arm()
    yield sandbox
    gate.released.set()
    sandbox.reset(faults=True)


@pytest.fixture(scope="module")
def fresh_pull(portal: tuple[HubSpotSandbox, Gate], tmp_path_factory: Any) -> dict[str, Any]:
    """The mirror of an uninterrupted full pull of the portal: what "nothing lost" compares to."""
    cfg = write_sync_toml(tmp_path_factory.mktemp("ref") / "sync.toml", portal[0], extra=HS_EXTRA)
    report = run_once(config.load(cfg), "hubspot", RunOptions(full=True, pull_only=True))
    assert report.outcome == "ok"
    return snapshot(cfg.parent / "crmsync.db", "hubspot", with_raw=True)


def hs_config(tmp_path: Path, hs: HubSpotSandbox) -> tuple[Path, Path]:
    cfg = write_sync_toml(tmp_path / "sync.toml", hs, extra=HS_EXTRA)
    return cfg, tmp_path / "crmsync.db"


def assert_resumes_to_a_fresh_pull(cfg: Path, db: Path, fresh: dict[str, Any]) -> None:
    """Nothing lost: the next pull completes and the mirror equals an uninterrupted full pull,
    without counting a committed row twice."""
    before = counts(snapshot(db, "hubspot")) if db.exists() else {}
    done = crmsync("sync", "--crm", "hubspot", "--pull-only", "--config", str(cfg))
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same(snapshot(db, "hubspot", with_raw=True), fresh, names=("resumed", "uninterrupted"))
    last = runs(db)[-1]
    assert last["outcome"] == "ok"
    for table, n in counts(fresh).items():
        c = last["counts"]["pull"].get(table)
        if c is not None and before:
            assert before[table] + c["inserted"] == n, (table, before[table], c, n)


# ---------------------------------------------------------------- 1. a mirror that cannot be used


@pytest.fixture(scope="module")
def synced(tmp_path_factory: Any) -> Iterator[Path]:
    """A sync.toml and a mirror with flags after one full sync of a small HubSpot portal."""
    tmp = tmp_path_factory.mktemp("synced")
    with HubSpotSandbox(dataset=generate(seed=3, accounts=12, crms=("hubspot",))) as sandbox:
        cfg = write_sync_toml(tmp / "sync.toml", sandbox, extra=HS_EXTRA)
        assert invoke("setup", "--config", str(cfg)).exit_code == 0
        result = invoke("sync", "--as-of", AS_OF, "--config", str(cfg))
        assert result.exit_code in (0, 1), result.output
        yield cfg


def copy_mirror(synced: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the synced mirror (one file, no WAL) and a sync.toml that points at it."""
    db = tmp_path / "crmsync.db"
    src = sqlite3.connect(f"file:{synced.parent / 'crmsync.db'}?mode=ro", uri=True)
    dst = sqlite3.connect(db)
    src.backup(dst)
    src.close()
    dst.close()
    cfg = tmp_path / "sync.toml"
    cfg.write_text(synced.read_text(encoding="utf-8"), encoding="utf-8")
    shutil.copy(synced.parent / "hubspot-token.txt", tmp_path / "hubspot-token.txt")
    return cfg, db


def damage_a_page(db: Path) -> None:
    """Garbage over part of a page in the middle of the file (a bad sector)."""
    pages = db.stat().st_size // 4096
    with open(db, "r+b") as f:
        f.seek((pages // 2) * 4096 + 100)
        f.write(b"\x00garbage" * 200)


def truncate_to_half(db: Path) -> None:
    """A copy cut short (a backup that ran out of space)."""
    os.truncate(db, db.stat().st_size // 2)


@pytest.mark.parametrize("damage", [damage_a_page, truncate_to_half], ids=["damaged-page", "truncated"])
def test_a_damaged_mirror_is_refused_by_status_flags_and_sync_with_the_same_line_and_left_untouched(
    synced: Path, tmp_path: Path, damage: Any
) -> None:
    cfg, db = copy_mirror(synced, tmp_path)
    damage(db)
    digest = file_digest(db)
    lines = []
    for args in (["status"], ["flags"], ["report", "--html", str(tmp_path / "r.html")],
                 ["sync", "--crm", "hubspot", "--as-of", AS_OF]):
        result = invoke(*args, "--config", str(cfg))
        assert result.exit_code == 2, (args, result.output)
        lines.append(assert_one_error_line(
            result.stderr, f"the mirror {db} is damaged", "crmsync sync --full", "move it aside"
        ))
        assert result.stdout == "", "nothing may be served from a damaged mirror"
    assert len(set(lines)) == 1, lines
    assert file_digest(db) == digest, "a damaged mirror is never repaired or overwritten"
    assert not (tmp_path / "r.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["sync.toml", "hubspot-token.txt", "crmsync.db", "crmsync.db.lock"]
    )


def test_a_file_that_is_not_sqlite_is_refused_and_not_even_chmodded(tmp_path: Path) -> None:
    db = tmp_path / "crmsync.db"
    db.write_text("name,email\nJane,jane@example.com\n", encoding="utf-8")
    db.chmod(0o644)
    cfg = tmp_path / "sync.toml"
    cfg.write_text('[mirror]\npath = "crmsync.db"\n', encoding="utf-8")
    for args in (["status"], ["flags"]):
        result = invoke(*args, "--config", str(cfg))
        assert result.exit_code == 2, result.output
        assert_one_error_line(
            result.stderr, f"{db} is not a crmsync mirror (not an SQLite database)", "[mirror] path"
        )
    assert db.read_text(encoding="utf-8") == "name,email\nJane,jane@example.com\n"
    assert db.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crmsync.db", "sync.toml"]


def test_a_mirror_path_that_is_a_directory_is_named_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "notes.txt").write_text("keep me", encoding="utf-8")
    cfg = tmp_path / "sync.toml"
    cfg.write_text(
        '[mirror]\npath = "mirror"\n\n[hubspot]\nhost = "http://127.0.0.1:9"\ntoken_env = "T"\n',
        encoding="utf-8",
    )
    for args in (["status"], ["sync"]):
        result = invoke(*args, "--config", str(cfg), env={"T": "x"})
        assert result.exit_code == 2, result.output
        assert_one_error_line(
            result.stderr, f"the mirror path {tmp_path / 'mirror'} is a directory", "[mirror] path"
        )
    assert [p.name for p in (tmp_path / "mirror").iterdir()] == ["notes.txt"]


def _read_only_runner(folder: Path) -> list[str] | None:
    """argv prefix that runs a command with `folder` mounted read-only in a private mount
    namespace (util-linux unshare; works as root, where chmod does not stop writes), or None."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    prefix = [unshare, "--mount", "--map-root-user", "sh", "-c",
              'mount --bind -o ro "$0" "$0" && exec "$@"', str(folder)]
    probe = subprocess.run([*prefix, "sh", "-c", f'! touch "{folder}/.probe" 2>/dev/null'],
                           capture_output=True, timeout=30)
    return prefix if probe.returncode == 0 and not (folder / ".probe").exists() else None


def test_a_mirror_in_a_read_only_folder_is_refused_with_one_line_and_left_as_it_was(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "ro"
    open_db(folder / "crmsync.db").close()  # an empty, migrated mirror
    db = folder / "crmsync.db"
    digest = file_digest(db)
    cfg = tmp_path / "sync.toml"
    cfg.write_text(
        f'[mirror]\npath = "{db}"\n\n[hubspot]\nhost = "http://127.0.0.1:9"\ntoken_env = "T"\n',
        encoding="utf-8",
    )
    runner = _read_only_runner(folder)
    if runner is None and os.geteuid() != 0:
        folder.chmod(0o500)  # not root: the permission bits are enough
        db.chmod(0o400)
        runner = []
    if runner is None:
        # Root without mount namespaces: nothing makes a folder read-only for root, so
        # check that SQLite's own read-only error (the file opened read-only by URI) maps
        # to the same MirrorError line, in a separate process as the CLI would meet it.
        probe = subprocess.run(
            [sys.executable, "-c",
             "import sqlite3, sys; from state.db import mirror_error\n"
             f"c = sqlite3.connect('file:{db}?mode=ro', uri=True)\n"
             "try: c.execute('CREATE TABLE x (a)')\n"
             f"except sqlite3.Error as e: print(mirror_error(e, {str(db)!r}).line())"],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )
        assert "it or its folder is read-only" in probe.stdout, probe.stdout + probe.stderr
        return
    try:
        for args, needle in (
            (["status"], f"cannot write the mirror {db}: it or its folder is read-only"),
            (["sync"], f"could not create the mirror's lock file {db}.lock"),
        ):
            done = subprocess.run(
                [*runner, sys.executable, "-m", "crmsync.sync.cli", *args, "--config", str(cfg)],
                cwd=ROOT, capture_output=True, text=True, timeout=120,
                env={**os.environ, "T": "x"},
            )
            assert done.returncode == 2, done.stderr
            assert_one_error_line(done.stderr, needle, "writable")
    finally:
        folder.chmod(0o700)
        db.chmod(0o600)
    assert file_digest(db) == digest
    assert sorted(p.name for p in folder.iterdir()) == ["crmsync.db"]


def test_a_sound_mirror_is_still_served_after_the_check_at_open(synced: Path) -> None:
    result = invoke("status", "--config", str(synced))
    assert result.exit_code == 0, result.output
    assert "last runs" in result.stdout


# ---------------------------------------------------------------- 2. a full disk


def test_a_full_disk_during_a_pull_keeps_only_whole_pages_and_says_free_space(
    hs: HubSpotSandbox, fresh_pull: dict[str, Any], tmp_path: Path
) -> None:
    cfg, db = hs_config(tmp_path, hs)
    # The mirror of this portal takes about 2.5 MB; files may grow to 1 MB here.
    done = crmsync("sync", "--crm", "hubspot", "--pull-only", "--config", str(cfg),
                   max_file_bytes=1_000_000)
    assert done.returncode == 2, done.stderr[-3000:]
    # A write past the limit fails with EFBIG (SQLite: SQLITE_IOERR_WRITE) or short
    # (SQLITE_FULL), as on a full disk; the line says which, and the same fix.
    assert_one_error_line(
        done.stderr, f"could not write the mirror {db}", "Free space",
        "and run again; nothing half-written was kept.",
    )
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    committed = counts(snapshot(db, "hubspot"))
    assert committed["contacts"] < counts(fresh_pull)["contacts"], "the disk filled mid-pull"
    assert_resumes_to_a_fresh_pull(cfg, db, fresh_pull)


def test_a_full_disk_when_writing_the_lock_file_stops_before_the_mirror_or_the_crm(
    hs: HubSpotSandbox, tmp_path: Path
) -> None:
    cfg, db = hs_config(tmp_path, hs)
    assert crmsync("sync", "--crm", "hubspot", "--pull-only", "--config", str(cfg)).returncode == 0
    digest = file_digest(db)
    hs.reset()
    done = crmsync("sync", "--crm", "hubspot", "--config", str(cfg), max_file_bytes=0)
    assert done.returncode == 2, done.stderr[-3000:]
    assert_one_error_line(
        done.stderr, f"could not write the mirror's lock file {db}.lock",
        "Free space and run again; nothing half-written was kept.",
    )
    assert file_digest(db) == digest
    assert hs.requests.counts()["total"] == 0


# ---------------------------------------------------------------- 3. the CRM refuses a request


def test_a_hubspot_400_names_the_request_and_its_category_not_the_body(
    hs: HubSpotSandbox, fresh_pull: dict[str, Any], tmp_path: Path
) -> None:
    cfg, db = hs_config(tmp_path, hs)
    hs.faults.add(kind="status", route="search", status=400, category="VALIDATION_ERROR",
                  message=f"Property values were not valid: {PERSONAL}")
    done = crmsync("sync", "--crm", "hubspot", "--config", str(cfg))
    assert done.returncode == 3, done.stderr[-3000:]
    line = assert_one_error_line(
        done.stderr, "HubSpot refused search on companies (HTTP 400 VALIDATION_ERROR)"
    )
    assert PERSONAL not in done.stderr + done.stdout
    last = runs(db)[-1]
    assert last["outcome"] == "failed"
    assert last["error"] == line.removeprefix("crmsync: ")
    hs.faults.clear()
    assert_resumes_to_a_fresh_pull(cfg, db, fresh_pull)


def test_the_daemon_logs_the_traceback_but_records_the_same_one_line(
    hs: HubSpotSandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg, _ = hs_config(tmp_path, hs)
    hs.faults.add(kind="status", route="search", status=400, category="VALIDATION_ERROR",
                  message=f"Property values were not valid: {PERSONAL}")
    daemon = Daemon(cfg, config.load(cfg))
    result = daemon.run_job("hubspot", "incremental")
    assert result.outcome == "failed"
    assert result.error == "HubSpot refused search on companies (HTTP 400 VALIDATION_ERROR). " \
        "Run the same command with -v and report it if it persists."
    _, body = daemon.health()
    assert body["crms"]["hubspot"]["last_error"] == result.error
    failed = [r for r in caplog.records if r.getMessage() == "run failed"]
    assert failed and failed[0].exc_info is not None, "the job boundary logs the traceback"
    assert PERSONAL not in caplog.text


# ---------------------------------------------------------------- 4. a report into a folder that does not exist


def test_report_into_a_folder_that_does_not_exist_exits_2_and_creates_nothing(
    synced: Path, tmp_path: Path
) -> None:
    target = tmp_path / "reports" / "hygiene.html"
    result = invoke("report", "--html", str(target), "--config", str(synced))
    assert result.exit_code == 2, result.output
    assert_one_error_line(result.stderr, f"the folder {target.parent} does not exist", "Create it")
    assert not target.parent.exists()


# ---------------------------------------------------------------- 5. Ctrl-C and SIGTERM


def _start_and_hold_a_pull(hs: HubSpotSandbox, gate: Gate, cfg: Path, db: Path) -> Spawned:
    """`crmsync sync` held at its third search request: pages before it are committed."""
    gate.arm()
    hs.faults.add(kind="latency", route="search", nth=3, ms=1)
    run = Spawned("sync", "--crm", "hubspot", "--config", str(cfg))
    wait_until(lambda: gate.entered.is_set() or run.proc.poll() is not None, 60,
               "the sync to reach its third search page")
    assert gate.entered.is_set(), run.stderr[-3000:]
    assert runs(db)[-1]["finished_at"] is None, "the run is recorded as started"
    assert counts(snapshot(db, "hubspot"))["accounts"] > 0, "a page was committed"
    return run


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_stops_sync_at_the_next_page_records_interrupted_and_exits_130(
    portal: tuple[HubSpotSandbox, Gate], hs: HubSpotSandbox, fresh_pull: dict[str, Any],
    tmp_path: Path, sig: signal.Signals,
) -> None:
    gate = portal[1]
    cfg, db = hs_config(tmp_path, hs)
    run = _start_and_hold_a_pull(hs, gate, cfg, db)
    try:
        run.proc.send_signal(sig)
        run.wait_for_stderr(f"{sig.name} received: stopping after the current page")
        gate.released.set()  # the page in flight is answered, committed, and the run stops
        code = run.wait(timeout=60)
    finally:
        gate.released.set()
        run.stop()
    assert code == 130, run.stderr[-3000:]
    assert_one_error_line(run.stderr, "interrupted: stopped at a safe point")
    assert "Aborted!" not in run.stderr + run.stdout
    last = runs(db)[-1]
    assert last["outcome"] == "interrupted" and last["finished_at"] is not None
    assert counts(snapshot(db, "hubspot"))["contacts"] < counts(fresh_pull)["contacts"]
    assert_resumes_to_a_fresh_pull(cfg, db, fresh_pull)


def test_a_second_ctrl_c_stops_at_once_and_rolls_back_the_page_in_flight(
    portal: tuple[HubSpotSandbox, Gate], hs: HubSpotSandbox, fresh_pull: dict[str, Any],
    tmp_path: Path,
) -> None:
    gate = portal[1]
    cfg, db = hs_config(tmp_path, hs)
    run = _start_and_hold_a_pull(hs, gate, cfg, db)
    try:
        run.proc.send_signal(signal.SIGINT)
        run.wait_for_stderr("SIGINT received")
        run.proc.send_signal(signal.SIGINT)
        code = run.wait(timeout=60)  # while the CRM still holds the page in flight
        assert not gate.released.is_set()
    finally:
        gate.released.set()
        run.stop()
    assert code == 130, run.stderr[-3000:]
    assert_one_error_line(run.stderr, "interrupted: stopped at once")
    last = runs(db)[-1]
    assert last["outcome"] == "interrupted" and last["finished_at"] is not None
    assert_resumes_to_a_fresh_pull(cfg, db, fresh_pull)


# ---------------------------------------------------------------- 6. the Salesforce JWT key


def _shipped_config_with_salesforce_on(tmp_path: Path, key: Path) -> Path:
    text = (ROOT / "sync.toml").read_text(encoding="utf-8")
    text = text.replace("enabled = false", "enabled = true", 1)  # [salesforce] comes first
    text = text.replace('"/etc/crmsync/salesforce-jwt.key"', f'"{key.name}"')
    cfg = tmp_path / "sync.toml"
    cfg.write_text(text, encoding="utf-8")
    return cfg


def _public_key_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "cannot read"),
        (b"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC example\n", "is not a PEM private key"),
        (_public_key_pem(), "is not a PEM private key"),
    ],
    ids=["missing", "not-pem", "public-key"],
)
def test_a_missing_or_malformed_jwt_key_names_private_key_file_at_start(
    tmp_path: Path, content: bytes | None, says: str
) -> None:
    key = tmp_path / "salesforce-jwt.key"
    if content is not None:
        key.write_bytes(content)
    cfg = _shipped_config_with_salesforce_on(tmp_path, key)
    result = invoke("sync", "--config", str(cfg))
    assert result.exit_code == 2, result.output
    assert_one_error_line(
        result.stderr, "configuration error: [salesforce] private_key_file", str(key), says,
        "BEGIN PRIVATE KEY",
    )
    assert not (tmp_path / "crmsync.db").exists()


# ---------------------------------------------------------------- 7. numbers out of range


RANGES = {
    "health-port-too-high": ("[daemon]\nhealth_port = 99999", "[daemon] health_port = 99999"),
    "health-port-negative": ("[daemon]\nhealth_port = -1", "[daemon] health_port = -1"),
    "lock-timeout": ("[daemon]\nlock_timeout_seconds = -5", "[daemon] lock_timeout_seconds = -5"),
    "misfire-grace": ("[schedule]\nmisfire_grace_seconds = 0", "[schedule] misfire_grace_seconds = 0"),
    "hubspot-timeout": ('[hubspot]\ntoken_env = "T"\ntimeout_seconds = 0',
                        "[hubspot] timeout_seconds = 0"),
    "salesforce-timeout": ('[salesforce]\nusername = "u"\npassword_env = "T"\ntimeout_seconds = -1',
                           "[salesforce] timeout_seconds = -1"),
    "max-attempts": ("[writeback]\nmax_attempts = 0", "[writeback] max_attempts"),
    "hubspot-share": ('[hubspot]\ntoken_env = "T"\nmax_daily_share = 1.5',
                      "[hubspot] max_daily_share = 1.5"),
    "rule-window": ("[rules.stale_contact]\nstrategic_days = -60", "[rules.stale_contact] strategic_days"),
}


@pytest.mark.parametrize("case", RANGES)
def test_a_number_out_of_range_is_refused_naming_the_key(tmp_path: Path, case: str) -> None:
    table, key = RANGES[case]
    cfg = tmp_path / "sync.toml"
    cfg.write_text(table + "\n", encoding="utf-8")
    # `daemon` for its own table (no CRM is enabled there, so it could not start anyway);
    # `status` for the rest: both read the whole sync.toml first.
    command = "daemon" if table.startswith("[daemon]") else "status"
    result = invoke(command, "--config", str(cfg), env={"T": "x"})
    assert result.exit_code == 2, result.output
    assert_one_error_line(result.stderr, f"configuration error: {key}")
    assert not (tmp_path / "crmsync.db").exists()


# ---------------------------------------------------------------- 8. a busy mirror


def test_a_busy_mirror_with_no_wait_exits_2_naming_the_holder_and_advising_once(
    hs: HubSpotSandbox, tmp_path: Path
) -> None:
    cfg, db = hs_config(tmp_path, hs)
    assert crmsync("sync", "--crm", "hubspot", "--pull-only", "--config", str(cfg)).returncode == 0
    digest = file_digest(db)
    hs.reset()
    with acquire_writer_lock(db, wait=False):
        done = crmsync("sync", "--no-wait", "--config", str(cfg))
    assert done.returncode == 2, done.stderr
    assert_one_error_line(
        done.stderr, "The mirror is busy", f"crmsync process {os.getpid()}", f"{db}.lock"
    )
    assert done.stderr.count("--wait") == 1, "the advice is given once"
    assert "configuration error" not in done.stderr
    assert file_digest(db) == digest
    assert hs.requests.counts()["total"] == 0


# ---------------------------------------------------------------- 9. an empty environment variable


def test_an_environment_variable_set_but_empty_is_called_empty_not_unset(tmp_path: Path) -> None:
    cfg = tmp_path / "sync.toml"
    cfg.write_text('[hubspot]\ntoken_env = "CRMSYNC_TEST_TOKEN"\n', encoding="utf-8")
    result = invoke("sync", "--config", str(cfg), env={"CRMSYNC_TEST_TOKEN": ""})
    assert result.exit_code == 2, result.output
    line = assert_one_error_line(result.stderr, "CRMSYNC_TEST_TOKEN", "is set but empty")
    assert "not set" not in line
    result = invoke("sync", "--config", str(cfg), env={"CRMSYNC_TEST_TOKEN": None})  # type: ignore[dict-item]
    assert_one_error_line(result.stderr, "CRMSYNC_TEST_TOKEN, which is not set")


# ---------------------------------------------------------------- 10. usage


def test_a_misspelt_rule_is_refused_with_a_suggestion_instead_of_0_flags(synced: Path) -> None:
    listed = invoke("flags", "--rule", "stale_contact", "--status", "all", "--format", "json",
                    "--config", str(synced))
    assert listed.exit_code == 0, listed.output
    result = invoke("flags", "--rule", "stale_contacts", "--config", str(synced))
    assert result.exit_code == 2, result.output
    assert_one_error_line(result.stderr, "--rule stale_contacts", "did you mean stale_contact?")
    assert "flags" not in result.stdout


def test_status_offers_only_the_formats_it_prints(synced: Path) -> None:
    result = invoke("status", "--format", "csv", "--config", str(synced))
    assert result.exit_code == 2
    assert "'csv' is not one of 'table', 'json'" in result.stderr
    assert invoke("status", "--format", "json", "--config", str(synced)).exit_code == 0


# ---------------------------------------------------------------- 11. a dead CRM: one retry budget


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()  # nothing listens there now: connections are refused
    return port


class Dialer:
    """Counts connection attempts to `port` (urllib3, under requests and the HubSpot client)."""

    def __init__(self, port: int, monkeypatch: pytest.MonkeyPatch) -> None:
        self.port = port
        self.attempts = 0
        real = urllib3.util.connection.create_connection

        def create_connection(address: Any, *args: Any, **kw: Any) -> Any:
            if address[1] == self.port:
                self.attempts += 1
            return real(address, *args, **kw)

        monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)


@pytest.fixture
def fake_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Backoff waits are recorded, not slept: elapsed time is what the retry budget waited."""
    waits: list[float] = []
    monkeypatch.setattr("crmsync.sync.run.stop_aware_sleep", lambda should_stop: waits.append)
    return waits


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_a_dead_crm_is_reported_after_one_retry_budget_as_connection_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_sleep: list[float],
    caplog: pytest.LogCaptureFixture, crm: str,
) -> None:
    port = _closed_port()
    dialer = Dialer(port, monkeypatch)
    cfg = tmp_path / "sync.toml"
    table = (
        f'[salesforce]\nlogin_url = "https://127.0.0.1:{port}"\nusername = "u"\npassword_env = "T"\n'
        if crm == "salesforce"
        else f'[hubspot]\nhost = "http://127.0.0.1:{port}"\ntoken_env = "T"\n'
    )
    cfg.write_text(table, encoding="utf-8")
    result = invoke("sync", "--config", str(cfg), env={"T": "x"})
    assert result.exit_code == 3, result.output
    name = {"salesforce": "Salesforce", "hubspot": "HubSpot"}[crm]
    line = assert_one_error_line(
        result.stderr, f"{name} unreachable at", f"127.0.0.1:{port}", "connection refused",
        f"gave up after {DEFAULT_POLICY.max_attempts} attempts",
    )
    assert f"[{crm}]" in line, "the line names the settings to check"
    assert dialer.attempts == DEFAULT_POLICY.max_attempts, "one budget, not one per nested call"
    assert len(fake_sleep) == DEFAULT_POLICY.max_attempts - 1
    assert sum(fake_sleep) <= DEFAULT_POLICY.max_elapsed_seconds
    retries = [r for r in caplog.records if r.name == "crmsync.connectors.retry"]
    assert len(retries) == len(fake_sleep), "a retry is logged only when one follows"
    assert "will retry" not in result.output


def test_a_crm_that_never_answers_is_reported_as_timed_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_sleep: list[float]
) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # accepts connections (the kernel's backlog) and never answers
    port = int(silent.getsockname()[1])
    dialer = Dialer(port, monkeypatch)
    cfg = tmp_path / "sync.toml"
    cfg.write_text(
        f'[hubspot]\nhost = "http://127.0.0.1:{port}"\ntoken_env = "T"\ntimeout_seconds = 0.05\n',
        encoding="utf-8",
    )
    try:
        result = invoke("sync", "--config", str(cfg), env={"T": "x"})
    finally:
        silent.close()
    assert result.exit_code == 3, result.output
    assert_one_error_line(result.stderr, "HubSpot unreachable", "timed out", "gave up after")
    assert dialer.attempts == DEFAULT_POLICY.max_attempts


# ---------------------------------------------------------------- 12. relative paths


def test_a_relative_config_from_another_folder_uses_the_mirror_beside_it(
    hs: HubSpotSandbox, tmp_path: Path
) -> None:
    sub = tmp_path / "sub"
    cfg = write_sync_toml(sub / "sync.toml", hs, extra=HS_EXTRA)
    text = cfg.read_text(encoding="utf-8")
    assert 'path = "crmsync.db"' in text and 'token_file = "hubspot-token.txt"' in text
    done = crmsync("sync", "--crm", "hubspot", "--pull-only", "--config", "sub/sync.toml",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (sub / "crmsync.db").exists()
    assert not (sub / "sub").exists(), "a second mirror was built under sub/sub"
    # The same mirror from its own folder: an incremental run on top of the full one.
    done = crmsync("sync", "--crm", "hubspot", "--pull-only", "--config", "sync.toml", cwd=sub)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [r["mode"] for r in runs(sub / "crmsync.db")] == ["full", "incremental"]  # the first sync pulls in full
    assert runs(sub / "crmsync.db")[-1]["counts"]["pull"]["contacts"]["mode"] == "incremental"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]


# ---------------------------------------------------------------- 13. more files a user gets wrong


def test_files_named_in_the_config_that_cannot_be_used_are_named_with_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "sync.toml"
    cfg.write_bytes('[hubspot]\ntoken_env = "T"\n# caf\xe9\n'.encode("latin-1"))
    result = invoke("status", "--config", str(cfg), env={"T": "x"})
    assert result.exit_code == 2, result.output
    assert_one_error_line(result.stderr, f"{cfg} is not UTF-8 text")

    cfg.write_text('[hubspot]\ntoken_env = "T"\nca_file = "corporate-ca.pem"\n', encoding="utf-8")
    result = invoke("status", "--config", str(cfg), env={"T": "x"})
    assert result.exit_code == 2, result.output
    assert_one_error_line(result.stderr, f"[hubspot] ca_file: {tmp_path / 'corporate-ca.pem'} is not a file")

    data = tmp_path / "org.json"
    data.write_text("{not json", encoding="utf-8")
    result = invoke("sandbox", "hubspot", "--data", str(data))
    assert result.exit_code == 2, result.output
    assert_one_error_line(result.stderr, f"--data {data}: not a readable JSON dataset")


def test_an_unknown_exception_is_a_bug_with_exit_70_and_one_line(
    synced: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any, **__: Any) -> int:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("crmsync.sync.report.print_status", broken)
    result = invoke("status", "--config", str(synced))
    assert result.exit_code == 70
    assert_one_error_line(result.stderr, "internal error (ZeroDivisionError)", "-v")
    verbose = invoke("-v", "status", "--config", str(synced))
    assert "Traceback" in verbose.stderr and verbose.exit_code == 70
    assert error_lines(verbose.stderr)
