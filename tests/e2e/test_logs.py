"""What crmsync prints, as an ops engineer and a privacy reviewer read it (issue 7, DESIGN "Logs").

Runs `crmsync sync -v` and `crmsync daemon --log-format json` as subprocesses
against both sandbox CRMs, with faults that push the code through its error
and retry paths (expired sessions and tokens, 5xx, 429, rejected writes),
because that is where secrets and personal data usually leak: exception
messages, URLs, request bodies. Then greps everything the process wrote for:

- every secret: the sandbox's password, security token, consumer secret, JWT
  private key, HubSpot app token, OAuth client secret and refresh token, and
  the session ids and access tokens the sandboxes issued during the run;
- every email address in the generated org (contacts and owners), and, on
  stderr (the log), every contact's full name.

JSON lines must parse, and the "run finished" line carries the run's counts.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import AS_OF, Env

HS_OAUTH_TABLE = """[hubspot]
enabled = true
host = "{url}"
auth = "oauth"
client_id = "sandbox-client-id"
client_secret_file = "hubspot-client-secret.txt"
refresh_token_file = "hubspot-refresh-token.txt"
"""

FIXED_SECRETS = (
    "sandbox-password",
    "sandbox-token",
    "sandbox-consumer-secret",
    "pat-sandbox-0000",
    "sandbox-client-secret",
    "sandbox-refresh-token",
    "PRIVATE KEY",
)


@pytest.fixture
def noisy_env(env: Env) -> Iterator[tuple[Env, list[str]]]:
    """Both CRMs, HubSpot over OAuth, faults on the error paths; yields (env, issued session ids)."""
    (env.dir / "hubspot-client-secret.txt").write_text("sandbox-client-secret\n", encoding="utf-8")
    (env.dir / "hubspot-refresh-token.txt").write_text("sandbox-refresh-token\n", encoding="utf-8")
    text = env.config.read_text(encoding="utf-8")
    head, _, _ = text.partition("[hubspot]")
    env.config.write_text(
        head
        + HS_OAUTH_TABLE.format(url=env.hs.url)
        + '\n[schedule]\nincremental = "every 1 hours"\nfull = "off"\nreconcile = "off"\n'
        + "\n[daemon]\nhealth_port = 0\n",
        encoding="utf-8",
    )
    issued: list[str] = []
    real_issue = env.sf.auth.issue

    def issue() -> str:
        token = real_issue()
        issued.append(token)
        return token

    env.sf.auth.issue = issue  # type: ignore[method-assign]
    assert env.cli("setup").exit_code == 0
    contact = env.dataset["salesforce"]["Contact"][0]["Id"]
    company = env.dataset["hubspot"]["companies"][0]["id"]
    env.sf.faults.load(
        {
            "seed": 5,
            "rules": [
                {"kind": "expire_session", "every": 9},
                {"kind": "status", "status": 503, "route": "query*", "nth": 2},
                {
                    "kind": "reject_write",
                    "match": {"object": "Contact", "id": contact},
                    "code": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                    "message": "Hygiene status is locked for this contact",
                },
            ],
        }
    )
    env.hs.set_faults(
        {
            "seed": 5,
            "rules": [
                {"kind": "expire_token", "every": 7},
                {"kind": "status", "status": 502, "nth": 4},
                {"kind": "rate_limit", "route": "search", "nth": 2, "retry_after": 1},
                {
                    "kind": "reject_write",
                    "match": {"object": "companies", "id": company},
                    "code": "VALIDATION_ERROR",
                    "message": "Property values were not valid",
                },
            ],
        }
    )
    yield env, issued


def _personal_data(dataset: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(every email address, every contact's full name) in both CRMs of the dataset."""
    sf, hs = dataset["salesforce"], dataset["hubspot"]
    emails = {r.get("Email") for r in sf["Contact"] + sf["User"]}
    emails |= {(r.get("properties") or {}).get("email") for r in hs["contacts"]}
    emails |= {r.get("email") for r in hs["owners"]}
    names = {
        f"{r.get('FirstName')} {r.get('LastName')}" for r in sf["Contact"] if r.get("FirstName")
    }
    names |= {
        f"{p.get('firstname')} {p.get('lastname')}"
        for p in (r.get("properties") or {} for r in hs["contacts"])
        if p.get("firstname")
    }
    return {e for e in emails if e and "@" in e}, {n for n in names if len(n) > 5}


def _secrets(env: Env, issued: list[str]) -> set[str]:
    dynamic = set(issued) | set(env.hs.auth.access)
    assert issued and env.hs.auth.access, "the run must have logged in to both CRMs"
    return set(FIXED_SECRETS) | dynamic


def _crmsync(env: Env, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crmsync.sync.cli", *args, "--config", str(env.config)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=env.dir,
    )


def _assert_clean(env: Env, issued: list[str], stdout: str, stderr: str) -> None:
    leaked = sorted(s for s in _secrets(env, issued) if s in stdout or s in stderr)
    assert not leaked, f"secrets in the output: {[s[:12] + '...' for s in leaked]}"
    emails, names = _personal_data(env.dataset)
    lowered = (stdout + stderr).lower()
    shown = sorted(e for e in emails if e.lower() in lowered)
    assert not shown, f"{len(shown)} email addresses in the output, e.g. {shown[:3]}"
    named = sorted(n for n in names if n in stderr)
    assert not named, f"{len(named)} contact names in the log, e.g. {named[:3]}"


def test_verbose_sync_through_faults_logs_no_secret_email_or_name(
    noisy_env: tuple[Env, list[str]],
) -> None:
    env, issued = noisy_env
    full = _crmsync(env, "sync", "--full", "-v", "--as-of", AS_OF)
    again = _crmsync(env, "sync", "-v", "--as-of", AS_OF)
    for run in (full, again):
        assert run.returncode in (0, 1), run.stderr[-3000:]  # 1: the rejected rows
    assert "DEBUG" in full.stderr, "-v should log at DEBUG"
    assert "retrying" in full.stderr, "the faults should have driven a retry"
    assert full.returncode == 1, "the rejected writes make the run exit 1"
    _assert_clean(env, issued, full.stdout + again.stdout, full.stderr + again.stderr)


def test_daemon_json_lines_parse_and_run_finished_carries_counts(
    noisy_env: tuple[Env, list[str]],
) -> None:
    env, issued = noisy_env
    log = env.dir / "daemon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "crmsync.sync.cli",
                "daemon",
                "--config",
                str(env.config),
                "--log-format",
                "json",
            ],
            stdout=out,
            stderr=out,
            cwd=env.dir,
        )
        try:
            deadline = time.monotonic() + 90
            while log.read_text(encoding="utf-8").count('"run finished"') < 2:
                assert proc.poll() is None, log.read_text(encoding="utf-8")[-3000:]
                assert time.monotonic() < deadline, "the startup runs did not finish"
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log.read_text(encoding="utf-8")
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON
    assert all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)
    finished = {line["crm"]: line for line in lines if line["msg"] == "run finished"}
    assert set(finished) == {"salesforce", "hubspot"}
    for line in finished.values():
        assert line["outcome"] in ("ok", "partial"), line
        assert line["records"] > 0 and line["api_calls"] > 0, line
        assert {"run_id", "mode", "rejected", "seconds"} <= set(line), line
    assert finished["salesforce"]["rejected"] >= 1 and finished["hubspot"]["rejected"] >= 1
    assert any(line["level"] == "warning" for line in lines)
    _assert_clean(env, issued, "", text)


def test_text_log_has_one_run_finished_line_per_run_with_counts(env: Env, tmp_path: Path) -> None:
    env.cli("setup")
    run = _crmsync(env, "sync", "--full", "--as-of", AS_OF)
    assert run.returncode == 0, run.stderr[-2000:]
    finished = [line for line in run.stderr.splitlines() if "run finished" in line]
    assert len(finished) == 2, run.stderr
    for line in finished:
        assert "outcome=ok" in line and "records=" in line and "api_calls=" in line
        assert "records=0 " not in line
