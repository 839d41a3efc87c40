"""Salesforce as a real org behaves, through the CLI (issue 12, "## Salesforce").

What an admin and an account manager notice:

- `crmsync setup` says whether the task key is an External ID, and write-back
  lands without duplicates either way;
- after `setup` the integration user can write crmsync's fields and the
  account managers named in `grant_read_to` can read them (the sandbox hides
  a new field from everyone until field-level security grants it); without
  the setting, setup says what to do; a second `setup` writes nothing;
- an incremental after more than 15 days away (the recycle bin has purged the
  deletes) still retires the deleted records;
- auth = "refresh_token" syncs, and a revoked token stops the run at once
  with one line naming the setting.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from simple_salesforce import Salesforce

from crmsync.connectors.salesforce.transport import build_session
from crmsync.sandbox.generate import DEFAULT_AS_OF, generate
from crmsync.sandbox.salesforce import SalesforceSandbox
from crmsync.sync.cli import cli
from tests.clock import crm_now

from .helpers import assert_one_error_line, write_sync_toml

AS_OF = DEFAULT_AS_OF.strftime("%Y-%m-%dT%H:%M:%SZ")
DATA = generate(seed=5, accounts=15, crms=("salesforce",))
COVERAGE = "Crmsync_Coverage_Status__c"


def invoke(cfg: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--config", str(cfg)], catch_exceptions=False)


def as_user(sb: SalesforceSandbox, user_id: str | None = None) -> Salesforce:
    """simple-salesforce with a session of that user (default: the integration user)."""
    session = build_session(login_url=sb.url, instance_url=sb.url, ca_file=sb.ca_file)
    return Salesforce(session_id=sb.new_session(user_id), instance_url=sb.url, session=session)


def line(output: str, *words: str) -> str:
    found = [ln for ln in output.splitlines() if all(w in ln for w in words)]
    assert len(found) == 1, output
    return found[0]


def task_keys(sb: SalesforceSandbox) -> list[str]:
    return [t["Crmsync_Key__c"] for t in sb.records("Task") if t.get("Crmsync_Key__c") and not t["IsDeleted"]]


class MovableClock:
    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return crm_now() + self.offset


# ------------------------------------------------------------------ setup: the task key


@pytest.mark.parametrize(
    "org, says",
    [
        ("allowed", "created  (an External ID: tasks are upserted by it)"),
        ("plain", "not an External ID in this org: crmsync looks a task up by this key before creating it"),
        ("refused", "without External ID (the org refused it: FIELD_INTEGRITY_EXCEPTION)"),
    ],
)
def test_setup_says_whether_the_task_key_is_an_external_id_and_tasks_land_once(tmp_path, org, says):
    with SalesforceSandbox(DATA, activity_external_id=org) as sb:
        cfg = write_sync_toml(tmp_path / "sync.toml", sb)
        setup = invoke(cfg, "setup")
        assert setup.exit_code == 0, setup.output
        assert says in line(setup.output, "Task", "Crmsync_Key__c")
        first = invoke(cfg, "sync", "--full", "--as-of", AS_OF)
        assert first.exit_code == 0, first.output
        keys = task_keys(sb)
        assert keys and len(keys) == len(set(keys))
        upserts = sb.requests.count(route="composite_sobjects_upsert")
        assert (upserts > 0) == (org == "allowed")  # no External ID: never an upsert
        again = invoke(cfg, "sync", "--full", "--as-of", AS_OF)  # a rebuilt-mirror-like rerun
        assert again.exit_code == 0, again.output
        assert sorted(task_keys(sb)) == sorted(keys)


# ------------------------------------------------------------------ setup: field-level security


def test_after_setup_the_integration_user_writes_and_named_managers_read_the_fields(tmp_path):
    with SalesforceSandbox(DATA) as sb:
        users = [u for u in sb.records("User") if u.get("IsActive") and u["Username"] != "crmsync@sandbox.test"]
        manager, other = users[0], users[1]
        cfg = write_sync_toml(tmp_path / "sync.toml", sb, extra=f'grant_read_to = ["{manager["Username"]}"]')
        setup = invoke(cfg, "setup")
        assert setup.exit_code == 0, setup.output
        assert "created" in line(setup.output, "PermissionSet", "crmsync_integration")
        assert "assigned to a named user" in line(setup.output, "PermissionSet", "crmsync_read")
        assert invoke(cfg, "sync", "--full", "--as-of", AS_OF).exit_code == 0
        account = sorted(a["Id"] for a in sb.records("Account"))[0]
        theirs = as_user(sb, manager["Id"])
        assert COVERAGE in {f["name"] for f in theirs.Account.describe()["fields"]}
        status = theirs.Account.get(account)[COVERAGE]
        assert status in ("green", "amber", "red")  # what crmsync wrote, read as the manager
        field = {f["name"]: f for f in theirs.Account.describe()["fields"]}[COVERAGE]
        assert field["updateable"] is False  # read, not edit
        assert COVERAGE not in as_user(sb, other["Id"]).Account.get(account)  # not named: hidden

        writes = sb.requests.writes()
        again = invoke(cfg, "setup")
        assert again.exit_code == 0 and " 0 created" in again.output, again.output
        assert sb.requests.writes() == writes  # setup run twice changes nothing


def test_setup_grants_a_profile_and_explains_when_nobody_is_named(tmp_path):
    with SalesforceSandbox(DATA) as sb:
        cfg = write_sync_toml(tmp_path / "sync.toml", sb)
        setup = invoke(cfg, "setup")
        assert setup.exit_code == 0, setup.output
        assert (
            "assign the permission set crmsync_read to the people who should see the fields"
            in line(setup.output, "PermissionSet", "crmsync_read")
        )
        manager = next(u for u in sb.records("User") if u.get("IsActive") and u["Username"] != "crmsync@sandbox.test")
        assert COVERAGE not in {f["name"] for f in as_user(sb, manager["Id"]).Account.describe()["fields"]}

        cfg = write_sync_toml(tmp_path / "sync.toml", sb, extra='grant_read_to = ["Standard User"]')
        setup = invoke(cfg, "setup")
        assert setup.exit_code == 0, setup.output
        assert "assigned to" in line(setup.output, "PermissionSet", "crmsync_read")
        assert COVERAGE in {f["name"] for f in as_user(sb, manager["Id"]).Account.describe()["fields"]}


def test_setup_fails_naming_a_grant_read_to_entry_that_matches_nobody(tmp_path):
    with SalesforceSandbox(DATA) as sb:
        cfg = write_sync_toml(tmp_path / "sync.toml", sb, extra='grant_read_to = ["Sales Wizards"]')
        setup = invoke(cfg, "setup")
        assert setup.exit_code == 1, setup.output
        assert "grant_read_to names 'Sales Wizards'" in line(setup.output, "crmsync_read", "failed")


def test_a_write_to_a_field_setup_has_not_granted_is_refused_and_setup_requeues_it(tmp_path):
    """The sandbox hides a new field until it is granted, so the connector meets the real
    failure: a field created by hand (Tooling API, no field-level security) refuses writes."""
    with SalesforceSandbox(DATA) as sb:
        cfg = write_sync_toml(tmp_path / "sync.toml", sb)
        assert invoke(cfg, "setup").exit_code == 0
        admin = as_user(sb)
        admin.toolingexecute("sobjects/CustomField", method="POST", data={
            "FullName": "Contact.Crmsync_Status2__c", "Metadata": {"label": "S", "type": "Text", "length": 20}})
        cfg = write_sync_toml(tmp_path / "sync.toml", sb,
                              extra='fields = { Contact = { status = "Crmsync_Status2__c" } }')
        sync = invoke(cfg, "sync", "--full", "--as-of", AS_OF)
        assert sync.exit_code == 3, sync.output  # the field is missing to the integration user
        assert "crmsync setup" in sync.output
        setup = invoke(cfg, "setup")
        assert setup.exit_code == 0, setup.output
        assert "granted" in line(setup.output, "PermissionSet", "crmsync_integration")
        assert invoke(cfg, "sync", "--full", "--as-of", AS_OF).exit_code == 0
        assert any(c.get("Crmsync_Status2__c") for c in sb.records("Contact"))


# ------------------------------------------------------------------ D2 by the sandbox's clock


def _deleted_at(cfg: Path, table: str, rid: str) -> Any:
    conn = sqlite3.connect(cfg.parent / "crmsync.db")
    try:
        return conn.execute(f"SELECT deleted_at FROM {table} WHERE id = ?", [rid]).fetchone()[0]
    finally:
        conn.close()


def test_d2_sixteen_days_away_the_incremental_still_retires_deleted_records(tmp_path):
    clock = MovableClock()
    with SalesforceSandbox(DATA, clock=clock) as sb:
        cfg = write_sync_toml(tmp_path / "sync.toml", sb)
        assert invoke(cfg, "sync", "--full", "--pull-only").exit_code == 0
        contact = sorted(c["Id"] for c in sb.records("Contact") if not c["IsDeleted"])[5]
        sb.delete("Contact", contact)
        clock.offset = timedelta(days=16)  # crmsync was away; the recycle bin purged the row
        result = invoke(cfg, "sync", "--pull-only")
        assert result.exit_code == 0, result.output
        assert sb.record("Contact", contact) is None  # gone for good: queryAll cannot show it
        assert _deleted_at(cfg, "contacts", contact) is not None


def test_d2_back_within_the_bin_no_reconcile_is_spent(tmp_path):
    clock = MovableClock()
    with SalesforceSandbox(DATA, clock=clock) as sb:
        cfg = write_sync_toml(tmp_path / "sync.toml", sb)
        assert invoke(cfg, "sync", "--full", "--pull-only").exit_code == 0
        contact = sorted(c["Id"] for c in sb.records("Contact") if not c["IsDeleted"])[5]
        sb.delete("Contact", contact)
        clock.offset = timedelta(days=14)
        before = sb.requests.count(route="query*")
        assert invoke(cfg, "sync", "--pull-only").exit_code == 0
        assert _deleted_at(cfg, "contacts", contact) is not None  # queryAll showed the delete
        # one queryAll per object (6 objects, Tasks skipped without setup): no id listings
        assert sb.requests.count(route="query*") - before == 5


# ------------------------------------------------------------------ auth = "refresh_token"


def refresh_token_config(tmp_path: Path, sb: SalesforceSandbox) -> Path:
    cfg = write_sync_toml(tmp_path / "sync.toml", sb)
    text = cfg.read_text().replace('auth = "password"', 'auth = "refresh_token"')
    cfg.write_text(text)
    return cfg


def test_write_config_mentions_refresh_token_and_its_file_works(tmp_path):
    with SalesforceSandbox(DATA) as sb:
        cfg = refresh_token_config(tmp_path, sb)
        text = cfg.read_text()
        assert '"refresh_token"' in text.split("enabled = true")[0]  # the comment names the mode
        assert 'refresh_token_file = "salesforce-refresh-token.txt"' in text
        result = invoke(cfg, "sync", "--full", "--pull-only")
        assert result.exit_code == 0, result.output
        assert sb.requests.count(route="token") == 1 and sb.requests.count(route="login") == 0


def test_a4_a_revoked_refresh_token_stops_the_run_with_one_line_naming_the_setting(tmp_path):
    with SalesforceSandbox(DATA) as sb:
        cfg = refresh_token_config(tmp_path, sb)
        assert invoke(cfg, "sync", "--full", "--pull-only").exit_code == 0
        sb.revoke_refresh_tokens()
        tokens = sb.requests.count(route="token")
        result = invoke(cfg, "sync", "--pull-only")
        assert result.exit_code == 3
        assert_one_error_line(result.output, "invalid_grant", "refresh_token_env / refresh_token_file")
        assert sb.requests.count(route="token") - tokens == 1  # no retry loop (A4)
