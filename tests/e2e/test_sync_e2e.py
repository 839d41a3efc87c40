"""The whole product through its CLI against both sandbox CRMs and the official clients.

What a CRM admin and an account manager would notice: fields and tasks that land
in the CRM, a second run that writes nothing, a dry run that writes nothing,
flags and status that read back from the mirror.
"""

from __future__ import annotations

import json

from hubspot import HubSpot
from simple_salesforce import Salesforce

from crmsync.connectors.salesforce.transport import build_session
from crmsync.sandbox.hubspot import PRIVATE_APP_TOKEN
from crmsync.sandbox.salesforce import PASSWORD, SECURITY_TOKEN, USERNAME
from crmsync.state.db import open_db

from .conftest import Env


def _sf(env: Env) -> Salesforce:
    return Salesforce(
        username=USERNAME, password=PASSWORD, security_token=SECURITY_TOKEN,
        session=build_session(login_url=env.sf.url, instance_url=env.sf.url, ca_file=env.sf.ca_file),
    )


def _writes(env: Env) -> int:
    return env.sf.requests.writes() + env.hs.requests.writes()


def test_setup_then_full_sync_lands_fields_and_tasks_in_both_crms(env: Env) -> None:
    assert env.cli("setup").exit_code == 0
    again = env.cli("setup")
    assert again.exit_code == 0 and " 0 created" in again.output  # setup is idempotent
    result = env.sync("--full")
    assert result.exit_code == 0, result.output

    sf = _sf(env)
    accounts = sf.query_all("SELECT Id, Crmsync_Coverage_Status__c, Crmsync_Coverage_Score__c FROM Account")["records"]
    assert accounts and all(a["Crmsync_Coverage_Status__c"] in ("green", "amber", "red") for a in accounts)
    sf_tasks = sf.query_all("SELECT Id, Crmsync_Key__c, OwnerId, Subject FROM Task WHERE Crmsync_Key__c != null")["records"]
    assert sf_tasks, "departed champions / single-threaded accounts must produce tasks"
    keys = [t["Crmsync_Key__c"] for t in sf_tasks]
    assert len(keys) == len(set(keys))  # one task per key

    hs = HubSpot(access_token=PRIVATE_APP_TOKEN, host=env.hs.url)
    found = hs.crm.objects.tasks.search_api.do_search(public_object_search_request={
        "filterGroups": [{"filters": [{"propertyName": "crmsync_key", "operator": "HAS_PROPERTY"}]}],
        "properties": ["crmsync_key"], "limit": 200,
    })
    hs_keys = [t.properties["crmsync_key"] for t in found.results]
    assert hs_keys and len(hs_keys) == len(set(hs_keys))

    flags = json.loads(env.cli("flags", "--format", "json").output)
    assert {f["crm"] for f in flags} == {"salesforce", "hubspot"}
    for f in flags:
        assert f["explanation"] and f["evidence"] is not None


def test_w10_second_run_over_unchanged_data_makes_zero_write_calls(env: Env) -> None:
    env.cli("setup")
    assert env.sync("--full").exit_code == 0
    before = _writes(env)
    second = env.sync()
    assert second.exit_code == 0, second.output
    assert _writes(env) == before


def test_a_sync_with_nothing_to_evaluate_still_reports_the_whole_org(env: Env) -> None:
    # Issue 14: the third run evaluates no account (nothing changed since the second,
    # which evaluated the accounts the first run's writes touched); its flag and coverage
    # totals are still every account's, and the flags are as they were.
    env.cli("setup")
    assert env.sync("--full").exit_code == 0
    assert env.sync().exit_code == 0
    flags = _flags_but_last_seen(env)
    assert env.sync().exit_code == 0
    assert _flags_but_last_seen(env) == flags
    db = open_db(env.dir / "crmsync.db")
    runs = db.conn.execute("SELECT crm, counts FROM runs ORDER BY id").fetchall()
    db.close()
    for crm in ("salesforce", "hubspot"):
        first, _, third = [json.loads(c) for r, c in runs if r == crm]
        assert third["flags"] == first["flags"] and sum(first["flags"].values()) > 0
        assert third["coverage"] == first["coverage"]


def _flags_but_last_seen(env: Env) -> list[dict[str, object]]:
    """`crmsync flags`, without when each was last seen (every run that runs its rule)."""
    flags = json.loads(env.cli("flags", "--format", "json").output)
    return [{k: v for k, v in f.items() if k != "last_seen"} for f in flags]


def test_dry_run_plans_but_makes_no_write_call(env: Env) -> None:
    env.cli("setup")
    before = _writes(env)
    result = env.sync("--full", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run: nothing was written" in result.output
    assert "create" in result.output.lower()
    assert _writes(env) == before


def test_status_shows_runs_cursors_and_outbox(env: Env) -> None:
    env.cli("setup")
    env.sync("--full")
    out = env.cli("status").output
    assert "last runs" in out and "cursors" in out and "outbox" in out
    data = json.loads(env.cli("status", "--format", "json").output)
    assert {r["crm"] for r in data["runs"]} == {"salesforce", "hubspot"}
    assert all(r["outcome"] == "ok" for r in data["runs"])


def test_a_full_pull_that_finds_an_object_empty_deletes_nothing_unless_allowed(env: Env) -> None:
    assert env.sync("--full", "--pull-only", "--crm", "salesforce").exit_code == 0
    for opp in env.sf.records("Opportunity"):
        env.sf.purge("Opportunity", opp["Id"])  # as if the integration user lost access
    refused = env.sync("--full", "--pull-only", "--crm", "salesforce")
    assert refused.exit_code == 3
    assert "returned no records" in refused.output and "--allow-empty" in refused.output
    allowed = env.sync("--full", "--pull-only", "--crm", "salesforce", "--allow-empty")
    assert allowed.exit_code == 0, allowed.output
