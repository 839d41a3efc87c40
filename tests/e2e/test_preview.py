"""A preview writes nothing (issue 10, section 2).

`crmsync plan` and `crmsync sync --dry-run` show what a sync would do and
leave the mirror as it was: the flags, the run history, the outbox, the
written values, the mirror rows and the cursors that `status`, `flags`,
`report`, /metrics and /healthz read, and what the next run evaluates (the dirty
accounts, their due days). Each test compares a byte-for-byte dump
of those tables before and after, and what `status` and `flags` print.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from crmsync.state.db import open_db
from crmsync.sync import config as config_mod
from crmsync.sync.daemon import Daemon
from tests.clock import crm_now

from .conftest import AS_OF, Env

FAR_AHEAD = "2031-01-01"  # years after the data: most contacts turn stale, flags would pile up
REPORTED = ("flags", "runs", "outbox", "written", "accounts", "contacts", "tasks", "cursors",
            "dirty_accounts", "account_state", "evaluation_state")  # fmt: skip


def dump(mirror: Path, tables: tuple[str, ...] = REPORTED) -> dict[str, list[str]]:
    """Every row of `tables` as SQL text (sqlite's own dump), per table."""
    conn = sqlite3.connect(f"file:{mirror}?mode=ro", uri=True)
    try:
        lines = list(conn.iterdump())
    finally:
        conn.close()
    return {t: [ln for ln in lines if ln.startswith(f'INSERT INTO "{t}"')] for t in tables}


def whole(mirror: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{mirror}?mode=ro", uri=True)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def synced(env: Env) -> Path:
    assert env.cli("setup").exit_code == 0
    first = env.sync("--full")
    assert first.exit_code == 0, first.output
    return env.dir / "crmsync.db"


def test_plan_far_ahead_leaves_flags_runs_and_outbox_as_they_were(env: Env) -> None:
    mirror = synced(env)
    before, status, flags = dump(mirror), env.cli("status").output, env.cli("flags").output
    assert before["flags"] and before["runs"] and before["outbox"]  # there is something to keep
    today = env.cli("plan", "--as-of", AS_OF)
    assert today.exit_code == 0, today.output

    result = env.cli("plan", "--as-of", FAR_AHEAD)

    assert result.exit_code == 0, result.output
    assert dump(mirror) == before
    assert env.cli("status").output == status
    assert env.cli("flags").output == flags
    assert "would open" in result.output and "nothing was stored" in result.output
    # The next plan sees the same mirror: it resolves none of the flags the far one found.
    assert _flag_line(env.cli("plan", "--as-of", AS_OF).output) == _flag_line(today.output)
    assert _flag_line(today.output) != _flag_line(result.output)  # the far plan did find more


def _flag_line(output: str) -> list[str]:
    return [ln for ln in output.splitlines() if "flags (not stored)" in ln]


def test_dry_run_far_ahead_stores_nothing_and_writes_nothing(env: Env) -> None:
    mirror = synced(env)
    env.sf.update("Contact", env.sf.records("Contact")[0]["Id"], {"Title": "Chief Preview Officer"})
    before, everything = dump(mirror), whole(mirror)
    status, flags = env.cli("status").output, env.cli("flags").output
    writes = env.sf.requests.writes() + env.hs.requests.writes()

    result = env.cli("sync", "--dry-run", "--as-of", FAR_AHEAD)

    assert result.exit_code == 0, result.output
    assert env.sf.requests.writes() + env.hs.requests.writes() == writes
    assert dump(mirror) == before
    assert whole(mirror) == everything  # not even the changed contact or a cursor
    assert env.cli("status").output == status
    assert env.cli("flags").output == flags
    assert "pulled contacts" in result.output  # it did read the CRM
    assert "dry run: nothing was written to the CRM and nothing was stored" in result.output


def test_dry_run_before_the_first_sync_leaves_an_empty_mirror_empty(env: Env) -> None:
    assert env.cli("setup").exit_code == 0
    result = env.sync("--full", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "create task" in result.output  # the plan was shown
    assert all(rows == [] for rows in dump(env.dir / "crmsync.db").values())


def test_healthz_stays_unhealthy_after_only_previews(env: Env) -> None:
    assert env.cli("setup").exit_code == 0
    assert env.cli("sync", "--dry-run", "--as-of", FAR_AHEAD).exit_code == 0
    assert env.cli("plan", "--as-of", FAR_AHEAD).exit_code == 0
    daemon = Daemon(env.config, config_mod.load(env.config), clock=crm_now)
    ok, body = daemon.health()
    assert ok is False
    assert all(c["last_success"] is None and c["last_outcome"] is None for c in body["crms"].values())
    db = open_db(env.dir / "crmsync.db")
    try:
        assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
    finally:
        db.close()
    assert env.sync("--as-of", AS_OF).exit_code == 0  # a real sync is what makes it healthy
    assert daemon.health()[0] is True
