"""Golden identity case: the golden org in BOTH sandboxes at once, linked (docs/identity.md).

The same hand-built org (edge_cases/seed.json) is loaded into the Salesforce and the
HubSpot sandbox, as a company running both CRMs with HubSpot's native integration
would have it, with these differences made before the first sync (`differences`):

- Edith Past is stale in Salesforce but was reached last week in HubSpot;
- Theo Quiet's mail hard-bounced, seen in HubSpot only;
- Nevin Never's HubSpot record has another e-mail but carries his Salesforce id in
  `salesforcecontactid`, as the native integration keeps it (api-facts §24);
- a second Salesforce contact, Hugh Baker, shares Hugo Baker's e-mail.

With `[identity] home = "salesforce"`, admin's steps through the CLI: `crmsync setup`,
`crmsync sync --full --pull-only` (both mirrors filled and linked), `crmsync sync`,
then `crmsync links --format json`, `crmsync flags --format json` and the tasks in
each CRM. The expectations were written by hand in edge_cases/expected_identity.json.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from crmsync.sandbox.hubspot import HubSpotSandbox
from crmsync.sandbox.salesforce import SalesforceSandbox

from .test_golden import AS_OF, SCENARIO, SEED, _cli, _fragment, ids, names, write_config

EXPECTED = json.loads((SCENARIO / "expected_identity.json").read_text(encoding="utf-8"))
HUGH = "Hugh Baker"


def differences(sf: Any, hs: Any) -> dict[str, str]:
    """The changes above; returns {neutral name: Salesforce id} of the contact added."""
    s, h = ids("salesforce"), ids("hubspot")
    hs.update("contacts", h["Edith Past"], {"notes_last_contacted": "2026-10-25T09:00:00.000Z"})
    hs.update("contacts", h["Theo Quiet"], {"hs_email_hard_bounce_reason_enum": "UNKNOWN_USER"})
    hs.update(
        "contacts",
        h["Nevin Never"],
        {"email": "nevin.private@example.org", "salesforcecontactid": s["Nevin Never"]},
    )
    hugo = sf.record("Contact", s["Hugo Baker"])
    assert hugo is not None
    hugh = sf.create(
        "Contact",
        {"FirstName": "Hugh", "LastName": "Baker", "Email": hugo["Email"],
         "AccountId": hugo["AccountId"]},
    )  # fmt: skip
    return {hugh: HUGH}


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("identity")
    with SalesforceSandbox(dataset=SEED) as sf, HubSpotSandbox(dataset=SEED) as hs:
        fragment = {**_fragment(), "identity": {"home": "salesforce"}}
        config = write_config(directory, sf, "salesforce", fragment)
        hs.write_config(config)
        hs_keys = "".join(f"{k} = {json.dumps(v)}\n" for k, v in fragment["hubspot"].items())
        config.write_text(
            config.read_text(encoding="utf-8").replace(
                'token_file = "hubspot-token.txt"\n', f'token_file = "hubspot-token.txt"\n{hs_keys}'
            ),
            encoding="utf-8",
        )
        added = differences(sf, hs)
        _cli(config, "setup")
        _cli(config, "sync", "--full", "--pull-only")
        _cli(config, "sync", "--as-of", AS_OF)
        links = json.loads(_cli(config, "links", "--format", "json"))
        flags = json.loads(_cli(config, "flags", "--format", "json"))
        tasks = {
            "salesforce": [t for t in sf.records("Task") if t.get("Crmsync_Key__c")],
            "hubspot": [
                t for t in hs.records("tasks") if (t.get("properties") or {}).get("crmsync_key")
            ],
        }
    return {"links": links, "flags": flags, "tasks": tasks, "added": added}


def _name(crm: str, rid: str | None, added: dict[str, str]) -> str | None:
    if rid is None:
        return None
    return added.get(rid) or names(crm).get(rid, rid)


def test_links_are_made_as_written(linked: dict[str, Any]) -> None:
    added = linked["added"]
    contacts = {
        _name("salesforce", link["salesforce_id"], added): link["how"]
        for link in linked["links"]["links"]
        if link["object"] == "contacts"
    }
    accounts = {
        _name("salesforce", link["salesforce_id"], added): link["how"]
        for link in linked["links"]["links"]
        if link["object"] == "accounts"
    }
    for name, how in EXPECTED["contact_links"].items():
        assert contacts.get(name) == how, name
    for name, how in EXPECTED["account_links"].items():
        assert accounts.get(name) == how, name
    for name in EXPECTED["not_linked"]:
        assert name not in contacts, name
    # every HubSpot end of a contact link is the same person
    for link in linked["links"]["links"]:
        if link["object"] == "contacts":
            assert (
                names("salesforce")[link["salesforce_id"]] == names("hubspot")[link["hubspot_id"]]
            )


def test_an_email_shared_by_two_people_is_reported_not_linked(linked: dict[str, Any]) -> None:
    added = linked["added"]
    got = [
        {
            "object": a["object"],
            "how": a["how"],
            "salesforce": sorted(_name("salesforce", i, added) or "" for i in a["salesforce_ids"]),
            "hubspot": sorted(_name("hubspot", i, added) or "" for i in a["hubspot_ids"]),
        }
        for a in linked["links"]["ambiguous"]
    ]
    assert got == EXPECTED["ambiguous"]


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_flags_come_from_the_evidence_of_both_and_live_in_the_home_crm(
    linked: dict[str, Any], crm: str
) -> None:
    added = linked["added"]
    open_flags = {
        (f["rule"], _name(crm, f["contact_id"] or f["account_id"], added))
        for f in linked["flags"]
        if f["crm"] == crm and f["status"] == "open"
    }
    for rule, subject in EXPECTED["open_flags"][crm]["present"]:
        assert (rule, subject) in open_flags, (rule, subject)
    for rule, subject in EXPECTED["open_flags"][crm]["absent"]:
        assert (rule, subject) not in open_flags, (rule, subject)


def _task_account(crm: str, task: dict[str, Any]) -> str:
    key = task["Crmsync_Key__c"] if crm == "salesforce" else task["properties"]["crmsync_key"]
    _rule, _crm, account, _subject = key.split(":", 3)
    return names(crm).get(account, account)


def test_one_task_per_problem_for_linked_records(linked: dict[str, Any]) -> None:
    sf_accounts = {_task_account("salesforce", t) for t in linked["tasks"]["salesforce"]}
    hs_accounts = sorted({_task_account("hubspot", t) for t in linked["tasks"]["hubspot"]})
    assert set(EXPECTED["task_accounts"]["salesforce_includes"]) <= sf_accounts
    assert hs_accounts == EXPECTED["task_accounts"]["hubspot"]
