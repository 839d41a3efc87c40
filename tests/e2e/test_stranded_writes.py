"""No write is stranded (issue 10, section 3), and status numbers mean what they say (section 5).

A newcomer runs `crmsync sync` before `crmsync setup`: the run says which of
crmsync's fields are missing, queues nothing and exits 3; after `setup` the
next sync lands every write. Rows a CRM refused are listed by `crmsync
outbox` and `crmsync status` with the CRM's code and message, and requeued
by code (`crmsync outbox requeue`) or, when a missing field was the cause, by
`crmsync setup`. A run never counts a write it could not queue as planned
without saying so. Everything through the CLI against both sandboxes, read
back through the CRM side.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from crmsync.state import cursors
from crmsync.state.db import open_db, transaction
from crmsync.sync import run as run_mod

from .conftest import AS_OF, Env

SF_FIELDS = ("Crmsync_Stakeholders__c", "Crmsync_Coverage_Status__c", "Crmsync_Status__c", "Crmsync_Key__c")
HS_FIELDS = ("crmsync_stakeholders", "crmsync_coverage_status", "crmsync_status", "crmsync_key")
# Salesforce: INVALID_FIELD for an update naming a field it lacks; NOT_FOUND ("Provided external
# ID field does not exist or is not accessible") for the task upsert keyed by one (api-facts §11).
MISSING_FIELD_CODES = {"salesforce": {"INVALID_FIELD", "NOT_FOUND"}, "hubspot": {"PROPERTY_DOESNT_EXIST"}}


def status_json(env: Env) -> dict[str, Any]:
    result = env.cli("status", "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def landed(env: Env, crm: str) -> tuple[dict[str, Any], list[str]]:
    """(coverage status per live account, crmsync task keys), read from the CRM."""
    if crm == "salesforce":
        fields = {
            a["Id"]: a.get("Crmsync_Coverage_Status__c")
            for a in env.sf.records("Account") if not a.get("IsDeleted")
        }
        keys = [t["Crmsync_Key__c"] for t in env.sf.records("Task")
                if t.get("Crmsync_Key__c") and not t.get("IsDeleted")]  # fmt: skip
    else:
        fields = {c["id"]: c["properties"].get("crmsync_coverage_status")
                  for c in env.hs.records("companies")}  # fmt: skip
        keys = [t["properties"]["crmsync_key"] for t in env.hs.records("tasks")
                if t["properties"].get("crmsync_key")]  # fmt: skip
    return fields, keys


# ---------------------------------------------------------------- sync before setup


def test_sync_before_setup_exits_3_names_the_missing_fields_and_queues_nothing(env: Env) -> None:
    result = env.sync("--full")

    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    for name in (*SF_FIELDS, *HS_FIELDS):
        assert name in result.output
    assert "crmsync setup" in result.output.splitlines()[-1]
    assert "no write was queued" in result.output
    assert env.sf.requests.writes() == 0 and env.hs.requests.writes() == 0
    data = status_json(env)
    assert set(data["outbox"].values()) == {0}
    assert {r["outcome"] for r in data["runs"]} == {"failed"}
    assert all("fields are missing" in r["error"] for r in data["runs"])
    assert all(sum(c.get("open", 0) for c in rules.values()) for rules in data["flags"].values())


def test_sync_of_one_crm_before_setup_names_its_fields_and_the_setup_to_run(env: Env) -> None:
    result = env.sync("--full", "--crm", "hubspot")
    assert result.exit_code == 3, result.output
    last = result.output.splitlines()[-1]
    assert last.startswith("crmsync: HubSpot: 12 of crmsync's fields are missing: companies.crmsync_")
    assert "Run `crmsync setup --crm hubspot` to create them" in last


def test_setup_after_an_early_sync_then_the_next_sync_lands_every_write(env: Env) -> None:
    assert env.sync("--full").exit_code == 3
    setup = env.cli("setup")
    assert setup.exit_code == 0, setup.output

    result = env.sync()

    assert result.exit_code == 0, result.output
    assert "rejected: 0" in result.output
    for crm in ("salesforce", "hubspot"):
        fields, keys = landed(env, crm)
        assert fields and all(fields.values()), f"{crm}: an account lacks its coverage status"
        assert keys and len(keys) == len(set(keys))
    again = env.sync()  # the CRM now holds every value crmsync wants there
    assert again.exit_code == 0 and again.output.count("planned: nothing to write") == 2


def test_setup_prints_each_field_once(env: Env) -> None:
    result = env.cli("setup")
    assert result.exit_code == 0, result.output
    for name in (*SF_FIELDS, *HS_FIELDS):
        assert result.output.count(f" {name} ") == 1, result.output


# ---------------------------------------------------------------- rows refused for a missing field


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_setup_requeues_the_writes_a_crm_refused_for_want_of_its_fields(
    env: Env, crm: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As an earlier crmsync did (or a run that raced an admin deleting a field): the
    # writes went out before the fields existed, and the CRM refused every one.
    with monkeypatch.context() as m:
        m.setattr(run_mod, "_fields_missing", lambda connector, writeback: [])
        stranded = env.sync("--full", "--crm", crm)
    assert stranded.exit_code == 1, stranded.output
    dead = [p for p in status_json(env)["outbox_problems"] if p["status"] == "dead"]
    assert dead and {p["last_error_code"] for p in dead} <= MISSING_FIELD_CODES[crm]
    assert {p["attempts"] for p in dead} == {1}
    status = env.cli("status").output
    code = dead[0]["last_error_code"]
    assert f"{crm} {code}: {sum(p['last_error_code'] == code for p in dead)} dead" in status
    assert f"`crmsync setup --crm {crm}` creates the fields and requeues these" in status

    setup = env.cli("setup", "--crm", crm)

    assert setup.exit_code == 0, setup.output
    assert f"requeued {len(dead)} writes the CRM had refused for want of these fields" in setup.output
    result = env.sync("--crm", crm)
    assert result.exit_code == 0, result.output
    assert f"written: {len(dead)} rows, rejected: 0" in result.output
    fields, keys = landed(env, crm)
    assert fields and all(fields.values()) and keys
    assert status_json(env)["outbox"]["dead"] == 0


# ---------------------------------------------------------------- crmsync outbox


def test_outbox_lists_refused_rows_and_requeues_them_by_the_crms_code(env: Env) -> None:
    code, message = "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Coverage fields are locked for this account"
    account = sorted(a["Id"] for a in env.sf.records("Account"))[0]
    env.sf.faults.add(kind="reject_write", match={"object": "Account", "Id": account},
                      code=code, message=message)  # fmt: skip
    assert env.cli("setup").exit_code == 0
    assert env.sync("--full", "--crm", "salesforce").exit_code == 1

    listing = env.cli("outbox")
    assert listing.exit_code == 0, listing.output
    assert account in listing.output and code in listing.output and message in listing.output
    assert f"crmsync outbox requeue --code {code} --crm salesforce" in listing.output
    rows = json.loads(env.cli("outbox", "--code", code, "--format", "json").output)
    assert [(r["target_id"], r["status"], r["attempts"]) for r in rows] == [(account, "dead", 1)]
    status = env.cli("status").output
    line = next(ln for ln in status.splitlines() if f"salesforce {code}: 1 dead" in ln)
    assert line.endswith("after 1 attempt"), line  # not "1 attempts"
    assert f"the CRM said: {code}: {message}" in status

    # The same write, planned again, is held back by the dead row: said, and not exit 0.
    writes = env.sf.requests.writes()
    held = env.sync("--crm", "salesforce")
    assert held.exit_code == 1, held.output
    assert "1 planned write is held by earlier failures" in held.output
    assert "see `crmsync outbox`" in held.output
    assert env.sf.requests.writes() == writes

    typo = env.cli("outbox", "requeue", "--code", "FIELD_CUSTOM_VALIDATION")
    assert typo.exit_code == 2 and code in typo.output and "Traceback" not in typo.output
    assert env.cli("outbox", "requeue").exit_code == 2  # --code or --all: say which

    env.sf.faults.clear()  # the admin unlocked the field
    requeue = env.cli("outbox", "requeue", "--code", code)
    assert requeue.exit_code == 0, requeue.output
    assert f"requeued 1 row (code {code})" in requeue.output
    done = env.sync("--crm", "salesforce")
    assert done.exit_code == 0, done.output
    assert "written: 1 row, rejected: 0" in done.output
    assert env.sf.record("Account", account)["Crmsync_Coverage_Status__c"]
    assert json.loads(env.cli("outbox", "--format", "json").output) == []


# ---------------------------------------------------------------- status in words


def test_status_shows_cursors_in_words_not_json(env: Env) -> None:
    assert env.cli("setup").exit_code == 0
    assert env.sync("--full").exit_code == 0
    db = open_db(env.dir / "crmsync.db")
    try:
        with transaction(db):  # a full pull of contacts stopped after a page, as a kill leaves it
            cursors.begin_full(db, "salesforce", "contacts")
            cursors.save(db, "salesforce", "contacts", {"mode": "full", "after_id": "003000000000042AAA",
                         "watermark": None, "max_seen": None}, mode="full")  # fmt: skip
    finally:
        db.close()

    out = env.cli("status").output

    section = out.split("cursors", 1)[1].split("outbox:", 1)[0]
    assert "{" not in section and "watermark" not in section and "_ms" not in section
    assert "full pull in progress, resumes after record 003000000000042AAA" in section
    assert "incremental, changes since 20" in section and " UTC" in section


def test_status_counts_the_records_a_failed_run_committed(env: Env) -> None:
    env.sf.faults.add(kind="status", status=400, route="query*", nth=3)  # the contacts query
    result = env.sync("--full", "--pull-only", "--crm", "salesforce")
    assert result.exit_code == 3, result.output

    (run,) = status_json(env)["runs"]
    pulled = {o: c["records"] for o, c in run["counts"]["pull"].items()}
    assert run["outcome"] == "failed" and pulled["accounts"] == 12 and pulled["owners"] > 0
    table = env.cli("status").output.split("cursors", 1)[0]
    row = next(line for line in table.splitlines() if " failed " in line)
    assert f" {sum(pulled.values())} " in row, row
    assert AS_OF  # the run needs no as_of: it pulls only
