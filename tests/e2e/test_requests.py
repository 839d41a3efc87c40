"""No request that is not needed (issue 14), as the CRM sees it.

An admin watching the org's API usage expects an incremental over an unchanged
org to cost one data request per object it pulls and at most one more (the
login, HubSpot's daily usage read): no describe, no property list, no owners
listing, no `limits` call, run after run. A schema change still reaches the
mirror: after `schema_max_age_hours` (Salesforce revalidates with
If-Modified-Since and gets 304 when nothing changed), at once when a query
names a field the org no longer has, and a record naming an owner the kept
owners lack re-reads the owners in the same run.

Everything runs through the CLI, or `run_once` with an injected clock for "a
day later", against both sandboxes; requests are the sandboxes' own logs.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from crmsync.state.db import open_db
from crmsync.sync import config as config_mod
from crmsync.sync.run import RunOptions, make_connector, run_once
from tests.clock import crm_now

from .conftest import Env

SF_OBJECTS = 6  # User, Account, Contact, Opportunity, OpportunityContactRole, Task
DAY_LATER = timedelta(hours=25)  # past the default schema_max_age_hours (24)


def routes(sandbox: Any) -> dict[str, int]:
    return dict(sandbox.requests.counts()["by_route"])


def pull(env: Env, crm: str) -> None:
    result = env.sync("--crm", crm, "--pull-only")
    assert result.exit_code == 0, result.output


def pull_at(env: Env, crm: str, when: datetime) -> None:
    """An incremental pull whose run starts at `when` (the run's clock, which ages the
    schema the mirror keeps)."""
    cfg = config_mod.load(env.config)
    report = run_once(cfg, crm, RunOptions(pull_only=True), clock=lambda: when)
    assert report.outcome == "ok", report.error


def raw(env: Env, table: str, crm: str, rid: str) -> dict[str, Any]:
    db = open_db(env.dir / "crmsync.db")
    try:
        row = db.execute(f"SELECT raw FROM {table} WHERE crm = ? AND id = ?", [crm, rid]).fetchone()
    finally:
        db.close()
    assert row is not None, (table, rid)
    return dict(json.loads(row[0]))


def with_extra_fields(env: Env) -> None:
    """Keep a field and a property that the org does not have yet (an admin adds them)."""
    text = env.config.read_text()
    assert text.rstrip().splitlines()[0] and "[hubspot]" in text
    env.config.write_text(
        text.rstrip() + '\nextra_properties = { contacts = ["hobby"] }\n'
        '\n[salesforce.extra_fields]\nContact = ["Hobby__c"]\n'
    )


# ---------------------------------------------------------------- unchanged org


def test_an_incremental_over_an_unchanged_org_asks_only_for_data_and_one_more(env: Env) -> None:
    assert env.cli("setup").exit_code == 0  # crmsync's fields: tasks are pulled too
    pull(env, "salesforce")  # full
    pull(env, "hubspot")
    for run in range(2):
        env.sf.requests.reset()
        env.hs.reset()
        pull(env, "salesforce")
        pull(env, "hubspot")

        # Salesforce: one query per object (nothing changed: one page each) and the login.
        assert routes(env.sf) == {"GET query_all": SF_OBJECTS, "POST login": 1}, run
        # HubSpot: the daily usage read, and data: a search and an archived listing per
        # object (companies, contacts, deals, crmsync's tasks), the association sweep (one
        # company and one deal batch). No property lists, no owners.
        assert routes(env.hs) == {
            "GET account_usage": 1,
            "POST search": 4,
            "GET list": 4,
            "POST assoc_batch_read": 2,
        }, run


def test_the_share_guard_holds_from_the_first_data_answer_without_a_limits_call(
    env: Env,
) -> None:
    pull(env, "salesforce")
    env.sf.set_api_usage(used=600, max=1000)  # other integrations spent crmsync's share
    env.sf.requests.reset()

    result = env.sync("--crm", "salesforce", "--pull-only")

    assert result.exit_code == 3, result.output
    assert "reached crmsync's share" in result.stderr
    # The first query's answer said the usage (Sforce-Limit-Info); nothing went out after it.
    assert routes(env.sf) == {"POST login": 1, "GET query_all": 1}


# ---------------------------------------------------------------- Salesforce schema changes


def test_salesforce_a_new_field_is_described_after_the_max_age_and_the_rest_answer_304(
    env: Env,
) -> None:
    with_extra_fields(env)
    pull(env, "salesforce")
    contact = env.dataset["manifest"]["salesforce"]["stale_contact"][0]
    env.sf.add_field("Contact", "Hobby__c", "string")
    env.sf.update("Contact", contact, {"Hobby__c": "sailing"})
    env.sf.requests.reset()

    pull(env, "salesforce")  # within the max age: the kept describe, no Hobby__c yet

    assert env.sf.requests.count("sobject_describe") == 0
    assert "Hobby__c" not in raw(env, "contacts", "salesforce", contact)

    env.sf.update("Contact", contact, {"Hobby__c": "rowing"})
    env.sf.requests.reset()
    pull_at(env, "salesforce", crm_now() + DAY_LATER)

    # Each object is asked once with If-Modified-Since: Contact changed (a full describe),
    # the others answer 304 Not Modified and keep theirs.
    assert env.sf.requests.count("sobject_describe") == SF_OBJECTS
    assert raw(env, "contacts", "salesforce", contact)["Hobby__c"] == "rowing"

    env.sf.requests.reset()
    pull(env, "salesforce")  # the revalidated describes are good for another day
    assert env.sf.requests.count("sobject_describe") == 0


def test_salesforce_a_field_gone_from_the_org_is_described_again_once(env: Env) -> None:
    with_extra_fields(env)
    env.sf.add_field("Contact", "Hobby__c", "string")
    pull(env, "salesforce")  # the kept Contact describe lists Hobby__c
    env.sf.remove_field("Contact", "Hobby__c")
    contact = env.dataset["manifest"]["salesforce"]["stale_contact"][0]
    env.sf.update("Contact", contact, {"Title": "VP Sales"})
    env.sf.requests.reset()

    pull(env, "salesforce")

    # The query naming Hobby__c fails INVALID_FIELD: Contact alone is described again and
    # its query restarted without the field.
    assert env.sf.requests.count("sobject_describe") == 1
    # five objects (no setup here: no crmsync tasks to pull) and the query that failed
    assert env.sf.requests.count("query_all") == 5 + 1
    assert raw(env, "contacts", "salesforce", contact)["Title"] == "VP Sales"
    env.sf.requests.reset()
    pull(env, "salesforce")
    assert env.sf.requests.count("sobject_describe") == 0


# ---------------------------------------------------------------- HubSpot


def test_hubspot_a_new_property_is_read_after_the_max_age(env: Env) -> None:
    with_extra_fields(env)
    pull(env, "hubspot")
    env.hs.add_property("contacts", "hobby")
    contact = env.dataset["manifest"]["hubspot"]["stale_contact"][0]
    env.hs.reset()

    pull(env, "hubspot")  # within the max age: the kept property lists

    assert env.hs.requests.count("properties") == 0
    env.hs.update("contacts", contact, {"hobby": "sailing"})
    env.hs.reset()
    pull_at(env, "hubspot", crm_now() + DAY_LATER)

    assert env.hs.requests.count("properties") == 4  # companies, contacts, deals, tasks
    assert raw(env, "contacts", "hubspot", contact)["properties"]["hobby"] == "sailing"


def test_hubspot_owners_are_kept_an_hour_and_read_again_for_an_owner_they_lack(env: Env) -> None:
    pull(env, "hubspot")
    env.hs.reset()
    pull(env, "hubspot")
    assert env.hs.requests.count("owners") == 0, "kept: read at most hourly"

    owner = env.hs.add_owner({"email": "new.owner@example.com", "firstName": "New",
                              "lastName": "Owner"})  # fmt: skip
    contact = env.dataset["manifest"]["hubspot"]["stale_contact"][0]
    env.hs.update("contacts", contact, {"hubspot_owner_id": owner})
    env.hs.reset()

    pull(env, "hubspot")

    # The contact names an owner the kept list lacks: owners are read again in this run
    # (active and archived listings), so the mirror knows the new owner at once.
    assert env.hs.requests.count("owners") == 2
    assert raw(env, "owners", "hubspot", owner)["email"] == "new.owner@example.com"
    env.hs.reset()
    pull_at(env, "hubspot", crm_now() + timedelta(minutes=61))
    assert env.hs.requests.count("owners") == 2, "older than owners_max_age_minutes"

    # An owner id HubSpot does not list (an owner removed after the assignment): read again
    # once, then known as missing until the owners are read on schedule.
    env.hs.crm.validate_owners = False
    env.hs.update("contacts", contact, {"hubspot_owner_id": "999999"})
    env.hs.reset()
    pull(env, "hubspot")
    assert env.hs.requests.count("owners") == 2
    env.hs.update("contacts", contact, {"jobtitle": "VP Sales"})
    env.hs.reset()
    pull(env, "hubspot")
    assert env.hs.requests.count("owners") == 0


def test_fields_an_admin_creates_are_seen_by_the_next_run_within_the_max_age(env: Env) -> None:
    # No `crmsync setup` on this mirror: the first run keeps property lists without
    # crmsync's properties and stops before writing.
    first = env.sync("--crm", "hubspot")
    assert first.exit_code != 0 and "crmsync setup" in first.output + first.stderr
    # Someone creates them in HubSpot (here: another crmsync, with its own mirror).
    cfg = config_mod.load(env.config)
    other = make_connector("hubspot", cfg.connectors["hubspot"])
    assert any(c.status == "created" for c in other.ensure_fields(dry_run=False))
    env.hs.reset()

    second = env.sync("--crm", "hubspot")

    # The kept lists lacked crmsync's properties, so they were read again (companies,
    # contacts, tasks), not trusted for another day; the run writes.
    assert second.exit_code == 0, second.output
    assert env.hs.requests.count("properties") == 3
    assert env.hs.requests.writes() > 0
