"""A CRM error that quotes a person's e-mail address and name never reaches a log (issue 10, 4).

CRMs echo the values they refuse: Salesforce `INVALID_EMAIL_ADDRESS: Email: invalid
email address: ...`, HubSpot `Property values were not valid: [... "Email address
... is invalid" ...]`. Both sandboxes are made to answer so, with an address and a
name that appear nowhere else, in the two ways a CRM refuses:

- one record of a write (reject_write): the row stays in the outbox with the CRM's
  message, which `crmsync status` shows a person;
- a whole request (a 400 on the pull's query or search): the run fails.

Then the address and the name must be absent from every log line (`crmsync sync -v`
text logs with its traceback; the daemon's job with JSON logs and their `exc`), from
the runs table (`runs.error`) and from /healthz (`last_error`).
"""

from __future__ import annotations

import io
import json
import logging
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from crmsync.sync import config as config_mod
from crmsync.sync import logs
from crmsync.sync.daemon import Daemon
from crmsync.sync.health import HealthServer

from .conftest import AS_OF, Env

LEAK_EMAIL = "leaky.mcleakface@evil.example"
LEAK_NAME = "Leaky McLeakface"
SF_MESSAGE = f"Email: invalid email address: {LEAK_EMAIL} ({LEAK_NAME})"
HS_PROPERTY_ERRORS = json.dumps(
    [
        {
            "isValid": False,
            "message": f"Email address {LEAK_EMAIL} of {LEAK_NAME} is invalid",
            "error": "INVALID_EMAIL",
            "name": "email",
        }
    ]
)
HS_MESSAGE = f"Property values were not valid: {HS_PROPERTY_ERRORS}"


def _reject_one_write(env: Env) -> tuple[str, str]:
    """Each CRM refuses the status write of one stale contact, quoting the address and
    the name; returns the two contact ids."""
    sf_id = env.dataset["manifest"]["salesforce"]["stale_contact"][0]
    hs_id = env.dataset["manifest"]["hubspot"]["stale_contact"][0]
    env.sf.faults.load(
        {
            "rules": [
                {
                    "kind": "reject_write",
                    "match": {"object": "Contact", "id": sf_id},
                    "code": "INVALID_EMAIL_ADDRESS",
                    "message": SF_MESSAGE,
                }
            ]
        }
    )
    env.hs.set_faults(
        {
            "rules": [
                {
                    "kind": "reject_write",
                    "match": {"object": "contacts", "id": hs_id},
                    "code": "INVALID_EMAIL",
                    "message": f"Email address {LEAK_EMAIL} of {LEAK_NAME} is invalid",
                    "mode": "whole_batch",  # a 400 for the call: the bisecting path
                }
            ]
        }
    )
    return sf_id, hs_id


def _refuse_the_pull(env: Env) -> None:
    """Every query (Salesforce) and search (HubSpot) answers 400 quoting the address."""
    env.sf.faults.load(
        {
            "rules": [
                {
                    "kind": "status",
                    "route": "query*",
                    "status": 400,
                    "errorCode": "INVALID_EMAIL_ADDRESS",
                    "message": SF_MESSAGE,
                }
            ]
        }
    )
    env.hs.set_faults(
        {
            "rules": [
                {
                    "kind": "status",
                    "route": "search",
                    "status": 400,
                    "category": "VALIDATION_ERROR",
                    "message": HS_MESSAGE,
                }
            ]
        }
    )


def _leaks(text: str) -> list[str]:
    return [s for s in (LEAK_EMAIL, LEAK_NAME, "leaky.mcleakface") if s.lower() in text.lower()]


def _crmsync(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crmsync.sync.cli", *args, "--config", str(env.config)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=env.dir,
    )


def _run_errors(env: Env) -> list[str]:
    with sqlite3.connect(env.dir / "crmsync.db") as db:
        return [r[0] for r in db.execute("SELECT error FROM runs WHERE error IS NOT NULL")]


def _status_shows_the_crms_message(env: Env, sf_id: str, hs_id: str) -> None:
    """`crmsync status` groups refused rows by the CRM's code with its message;
    `crmsync outbox` lists each row by record id with the message."""
    status = env.cli("status")
    assert status.exit_code == 0, status.output
    assert "INVALID_EMAIL_ADDRESS" in status.stdout and SF_MESSAGE in status.stdout, status.stdout
    assert LEAK_EMAIL in status.stdout, status.stdout
    rows = env.cli("outbox", "--format", "json")
    assert rows.exit_code == 0, rows.output
    by_target = {r["target_id"]: r for r in json.loads(rows.stdout)}
    assert SF_MESSAGE in by_target[sf_id]["last_error"], by_target[sf_id]
    assert LEAK_EMAIL in by_target[hs_id]["last_error"], by_target[hs_id]


def test_sync_text_log_and_traceback_hold_no_email_or_name_the_crm_echoed(env: Env) -> None:
    assert env.cli("setup").exit_code == 0
    sf_id, hs_id = _reject_one_write(env)
    first = _crmsync(env, "sync", "--full", "-v", "--as-of", AS_OF)
    assert first.returncode == 1, first.stderr[-3000:]  # the two rows the CRMs refused
    assert "DEBUG" in first.stderr
    _refuse_the_pull(env)
    failed = [_crmsync(env, "sync", "--crm", crm, "-v") for crm in ("salesforce", "hubspot")]
    for run in failed:
        assert run.returncode == 3, run.stderr[-3000:]  # a request the CRM refused
        assert "Traceback" in run.stderr, "-v shows the traceback"
        assert "HTTP 400" in run.stderr  # the message still says what happened
    for where, text in (
        ("sync log", first.stderr),
        ("failed syncs' logs and tracebacks", "".join(r.stderr for r in failed)),
        ("failed syncs' summaries", "".join(r.stdout for r in failed)),
        ("runs.error", "\n".join(_run_errors(env))),
    ):
        assert not _leaks(text), f"{where} holds {_leaks(text)}:\n{text[-3000:]}"
    assert len(_run_errors(env)) == 2, "both failed runs recorded their error"
    _status_shows_the_crms_message(env, sf_id, hs_id)


def _get(url: str) -> tuple[int, str]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture
def json_log(env: Env) -> Iterator[io.StringIO]:
    """crmsync set up (`crmsync setup`), then its logging configured as the daemon's
    JSON lines, into a buffer."""
    assert env.cli("setup").exit_code == 0  # the CLI configures logging: before ours
    buf = io.StringIO()
    logs.setup("json", "DEBUG", stream=buf)
    try:
        yield buf
    finally:
        root = logging.getLogger()
        for handler in list(root.handlers):
            if getattr(handler, "_crmsync", False):
                root.removeHandler(handler)


def test_daemon_json_log_runs_and_healthz_hold_no_email_or_name_the_crm_echoed(
    env: Env, json_log: io.StringIO
) -> None:
    daemon = Daemon(env.config, config_mod.load(env.config))
    server = HealthServer("127.0.0.1", 0, daemon.metrics, daemon.health).start()
    try:
        sf_id, hs_id = _reject_one_write(env)
        for crm in ("salesforce", "hubspot"):
            assert daemon.run_job(crm, "full").outcome == "partial"
        _refuse_the_pull(env)
        for crm in ("salesforce", "hubspot"):
            assert daemon.run_job(crm, "incremental").outcome == "failed"
        status, body = _get(f"http://127.0.0.1:{server.port}/healthz")
    finally:
        server.stop()
    health: dict[str, Any] = json.loads(body)
    for crm in ("salesforce", "hubspot"):
        assert "HTTP 400" in (health["crms"][crm]["last_error"] or ""), health
    lines = [json.loads(line) for line in json_log.getvalue().splitlines() if line.strip()]
    failures = [line for line in lines if line["msg"] == "run failed"]
    assert len(failures) == 2 and all("exc" in line for line in failures)
    rejected = [line for line in lines if line["msg"] == "CRM rejected a write"]
    assert {line["record_id"] for line in rejected} == {sf_id, hs_id}
    for where, text in (
        ("/healthz", body),
        ("daemon JSON log", json_log.getvalue()),
        ("runs.error", "\n".join(_run_errors(env))),
    ):
        assert not _leaks(text), f"{where} holds {_leaks(text)}:\n{text[-3000:]}"
    _status_shows_the_crms_message(env, sf_id, hs_id)
