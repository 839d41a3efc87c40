"""[identity] end to end: one generated org in both sandbox CRMs, kept in step by HubSpot's
native Salesforce integration on part of it (sandbox/generate/identity.py), through the CLI
and the official clients (docs/identity.md):

- a contact stale in Salesforce whom marketing reached last week in HubSpot is not flagged,
  in either CRM;
- linked people's problems have one task, in the home CRM; HubSpot keeps tasks only for
  records that are not linked;
- a link survives a merge in HubSpot (the surviving record has another e-mail and no
  Salesforce id) and a merge in Salesforce (the HubSpot record still names the merged-away
  id), and neither merge makes a second task.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crmsync.sandbox.generate import DEFAULT_AS_OF, generate
from crmsync.sandbox.generate.clock import epoch_ms, hs_datetime
from crmsync.sandbox.generate.identity import link_natively
from crmsync.sandbox.hubspot import HubSpotSandbox
from crmsync.sandbox.salesforce import SalesforceSandbox
from crmsync.sync.cli import cli

AS_OF = DEFAULT_AS_OF.strftime("%Y-%m-%dT%H:%M:%SZ")


class Org:
    def __init__(self, directory: Path, sf: Any, hs: Any, dataset: dict[str, Any], native: Any):
        self.dir, self.sf, self.hs, self.dataset, self.native = directory, sf, hs, dataset, native
        self.config = directory / "sync.toml"

    def cli(self, *args: str) -> str:
        result = CliRunner().invoke(
            cli, [*args, "--config", str(self.config)], catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        return result.output

    def links(self) -> dict[str, Any]:
        return json.loads(self.cli("links", "--format", "json"))

    def contact_links(self) -> dict[str, tuple[str, str, bool]]:
        """HubSpot id -> (Salesforce id, how, kept through a merge)."""
        return {
            link["hubspot_id"]: (link["salesforce_id"], link["how"], link["kept_through_merge"])
            for link in self.links()["links"]
            if link["object"] == "contacts"
        }

    def open_flags(self, crm: str) -> list[dict[str, Any]]:
        flags = json.loads(self.cli("flags", "--crm", crm, "--format", "json"))
        return [f for f in flags if f["status"] == "open"]

    def open_tasks(self, crm: str) -> list[str]:
        if crm == "salesforce":
            return [t["Crmsync_Key__c"] for t in self.sf.records("Task")
                    if t.get("Crmsync_Key__c") and not t.get("IsClosed")]  # fmt: skip
        return [t["properties"]["crmsync_key"] for t in self.hs.records("tasks")
                if t["properties"].get("crmsync_key")
                and t["properties"].get("hs_task_status") != "COMPLETED"]  # fmt: skip


@pytest.fixture
def org(fresh_org: Org) -> Org:
    fresh_org.cli("sync", "--full", "--pull-only")
    fresh_org.cli("sync", "--as-of", AS_OF)
    return fresh_org


@pytest.fixture
def fresh_org(tmp_path: Path) -> Iterator[Org]:
    """Both sandboxes and a config with [identity]; crmsync's fields set up, nothing pulled."""
    dataset = generate(seed=3, accounts=12)
    native = link_natively(dataset, as_of=DEFAULT_AS_OF)
    with SalesforceSandbox(dataset=dataset) as sf, HubSpotSandbox(dataset=dataset) as hs:
        cfg = tmp_path / "sync.toml"
        sf.write_config(cfg)
        hs.write_config(cfg)
        cfg.write_text(
            '[mirror]\npath = "crmsync.db"\n\n[identity]\nhome = "salesforce"\n\n'
            + cfg.read_text(encoding="utf-8"),
            encoding="utf-8",
        )
        o = Org(tmp_path, sf, hs, dataset, native)
        o.cli("setup")
        yield o


def _pair(org: Org, i: int) -> tuple[str, str]:
    return org.dataset["salesforce"]["Contact"][i]["Id"], org.dataset["hubspot"]["contacts"][i][
        "id"
    ]


def test_stale_in_one_active_in_the_other_is_not_flagged_and_tasks_live_at_home(org: Org) -> None:
    links = org.contact_links()
    sf_of = {h: s for h, (s, _how, _kept) in links.items()}
    reached = [h for h in org.native["reached"] if h in sf_of]
    assert reached, "the seed has stale Salesforce contacts whom marketing reached"
    sf_stale = {
        f["contact_id"] for f in org.open_flags("salesforce") if f["rule"] == "stale_contact"
    }
    assert sf_stale, "other stale contacts are still flagged"
    assert not sf_stale & {sf_of[h] for h in reached}
    # the native integration's ids link half the contacts, e-mail the rest
    hows = {how for _s, how, _k in links.values()}
    assert hows == {"integration_id", "email"}
    # nothing is flagged in HubSpot for a linked contact or account, and no task names one
    linked_hs = set(links)
    linked_companies = {
        link["hubspot_id"] for link in org.links()["links"] if link["object"] == "accounts"
    }
    for f in org.open_flags("hubspot"):
        assert f["contact_id"] not in linked_hs
        assert f["contact_id"] is not None or f["account_id"] not in linked_companies
    for key in org.open_tasks("hubspot"):
        _rule, _crm, account, subject = key.split(":", 3)
        assert subject not in linked_hs and (account != subject or account not in linked_companies)
    assert len(org.open_tasks("salesforce")) > len(org.open_tasks("hubspot"))


def test_links_survive_merges_in_either_crm(org: Org) -> None:
    before_tasks = sorted(org.open_tasks("salesforce")), sorted(org.open_tasks("hubspot"))
    # HubSpot: an e-mail-linked contact merged into a new record with another e-mail
    s_email, h_email = _pair(org, 1)
    assert org.contact_links()[h_email][:2] == (s_email, "email")
    fresh = org.hs.create("contacts", {"email": "merged.alias@elsewhere.test", "firstname": "M"})
    survivor = org.hs.merge("contacts", fresh, h_email)
    # Salesforce: an integration-id-linked contact merged into a new record
    s_id, h_id = _pair(org, 2)
    assert org.contact_links()[h_id][:2] == (s_id, "integration_id")
    master = org.sf.create(
        "Contact",
        {"LastName": "Master", "Email": "master.record@elsewhere.test",
         "AccountId": org.dataset["salesforce"]["Contact"][2]["AccountId"]},
    )  # fmt: skip
    org.sf.merge("Contact", master, [s_id])
    org.cli("sync", "--as-of", AS_OF)
    org.cli("sync", "--as-of", AS_OF)  # and the next refresh keeps them
    links = org.contact_links()
    assert h_email not in links and links[survivor] == (s_email, "email", True)
    assert links[h_id][0] == master
    assert s_id not in {s for s, _how, _k in links.values()}
    # still one task per problem: HubSpot got none for the merged people
    assert sorted(org.open_tasks("hubspot")) == before_tasks[1]


def test_a_first_sync_judges_salesforce_only_once_hubspot_is_pulled(fresh_org: Org) -> None:
    out = fresh_org.cli("sync", "--as-of", AS_OF)
    runs = [line.split(":")[0] for line in out.splitlines()
            if line.startswith(("salesforce: ", "hubspot: ")) and " run " in line]  # fmt: skip
    assert runs == ["salesforce", "hubspot", "salesforce"], out
    assert "rules and write-back wait for hubspot's first pull" in out
    sf_of = {h: s for h, (s, _how, _kept) in fresh_org.contact_links().items()}
    reached = {sf_of[h] for h in fresh_org.native["reached"] if h in sf_of}
    assert reached
    stale = {f["contact_id"] for f in fresh_org.open_flags("salesforce")
             if f["rule"] == "stale_contact"}  # fmt: skip
    assert stale and not stale & reached, "judged without HubSpot's evidence"
    # no task was made, and none completed, for a contact HubSpot shows active
    tasks = fresh_org.sf.records("Task")
    assert not {t["Crmsync_Key__c"].split(":", 3)[3] for t in tasks
                if t.get("Crmsync_Key__c")} & reached  # fmt: skip


def test_activity_seen_only_in_hubspot_clears_the_salesforce_flag_at_the_next_incremental(
    org: Org,
) -> None:
    """The Salesforce run evaluates only what changed, and a change pulled from HubSpot
    (or a link made or dropped) is such a change for the Salesforce account that holds the
    linked person: the next incremental leaves what a full evaluation leaves."""
    sf_of = {h: s for h, (s, _how, _kept) in org.contact_links().items()}
    stale = {f["contact_id"] for f in org.open_flags("salesforce") if f["rule"] == "stale_contact"}
    h, s = next((h, s) for h, s in sorted(sf_of.items()) if s in stale)
    for _ in range(2):  # crmsync's own writes come back and are evaluated once more
        quiet = org.cli("sync", "--as-of", AS_OF)
    assert quiet.count("(0 evaluated again") == 2, quiet  # nothing left to look at
    reached = hs_datetime(epoch_ms(DEFAULT_AS_OF - timedelta(days=3)))
    org.hs.update("contacts", h, {"notes_last_contacted": reached}, source="integration")

    org.cli("sync", "--crm", "hubspot", "--as-of", AS_OF)
    out = org.cli("sync", "--crm", "salesforce", "--as-of", AS_OF)

    assert "(1 evaluated again" in out or "(2 evaluated again" in out, out  # not all 12
    after = {f["contact_id"] for f in org.open_flags("salesforce") if f["rule"] == "stale_contact"}
    assert after == stale - {s}
    flags = sorted((f["rule"], f["contact_id"] or f["account_id"], f["explanation"])
                   for f in org.open_flags("salesforce"))  # fmt: skip
    org.cli("sync", "--full", "--crm", "salesforce", "--as-of", AS_OF)
    assert sorted((f["rule"], f["contact_id"] or f["account_id"], f["explanation"])
                  for f in org.open_flags("salesforce")) == flags  # fmt: skip
