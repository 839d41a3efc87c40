"""HubSpot as the vendor documents it (issue 12, "HubSpot"), end to end through
hubspot-api-client against the sandbox and crmsync's CLI:

- a contact moved to another primary company is seen by the next incremental
  pull, whether HubSpot moves its lastmodifieddate (as its property
  definitions imply) or not (the harsher reading, a sandbox fault), and so is
  a deal-contact label change alone (no date moves), at the documented cost;
  with the sweep turned off they wait for a full pull (a removed label for a
  reconcile);
- hard-bounce reasons are classified by what they mean, and the sandbox
  refuses an option an enumeration does not have, as HubSpot does;
- a contact with several buying roles counts every one;
- `sync --reconcile` removes a record deleted for good, resolves its flags and
  completes its task, at one list call per 100 records.

Sources are cited where the sandbox models them (sandbox/hubspot/objects.py,
properties.py) and in api-facts §3-§6 (docs/api-facts.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hubspot import HubSpot
from hubspot.crm.contacts import ApiException

from crmsync.sandbox.generate import DEFAULT_AS_OF, generate
from crmsync.sandbox.hubspot import PRIVATE_APP_TOKEN, HubSpotSandbox
from crmsync.state.db import open_db
from crmsync.sync import config
from crmsync.sync.cli import cli
from crmsync.sync.run import RunOptions, RunReport, run_once

from .helpers import write_sync_toml

AS_OF = DEFAULT_AS_OF.strftime("%Y-%m-%dT%H:%M:%SZ")
DATA = generate(seed=21, accounts=12, crms=("hubspot",))
LIMITS = "requests_per_10s = 1000\nsearches_per_second = 100"


@pytest.fixture
def hs(tmp_path: Path) -> Iterator[tuple[HubSpotSandbox, Path]]:
    with HubSpotSandbox(dataset=DATA) as sb:
        yield sb, write_sync_toml(tmp_path / "sync.toml", sb, extra=LIMITS)


def cli_run(cfg: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--config", str(cfg)], catch_exceptions=False)


def pull(cfg: Path, *, full: bool = False) -> RunReport:
    report = run_once(config.load(cfg), "hubspot", RunOptions(full=full, pull_only=True))
    assert report.outcome == "ok", report.error
    return report


def client(sb: HubSpotSandbox) -> HubSpot:
    return HubSpot(access_token=PRIVATE_APP_TOKEN, host=sb.url)


def mirror_rows(cfg: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    db = open_db(config.load(cfg).mirror.path)
    try:
        return [tuple(r) for r in db.execute(sql, list(args)).fetchall()]
    finally:
        db.close()


def account_of(cfg: Path, contact_id: str) -> str | None:
    return mirror_rows(cfg, "SELECT account_id FROM contacts WHERE id = ?", contact_id)[0][0]


def ids(sb: HubSpotSandbox, obj: str) -> list[str]:
    return sorted((r["id"] for r in sb.records(obj)), key=int)


def primary_of(sb: HubSpotSandbox, contact_id: str) -> str:
    rec = next(r for r in sb.records("contacts") if r["id"] == contact_id)
    return next(a["id"] for a in rec["associations"]["companies"] if a["label"] == "primary")


def flags(cfg: Path, status: str = "open") -> list[dict[str, Any]]:
    out = cli_run(cfg, "flags", "--format", "json", "--status", status)
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


# ================================================================== 1. company moves


def _move(sb: HubSpotSandbox) -> tuple[str, str, str]:
    contact = ids(sb, "contacts")[12]
    old = primary_of(sb, contact)
    new = next(c for c in ids(sb, "companies") if c != old)
    sb.associate("contacts", contact, "companies", new, "primary")
    return contact, old, new


def test_company_move_moves_the_contacts_date_and_the_incremental_search_sees_it(hs) -> None:
    sb, cfg = hs
    pull(cfg, full=True)
    contact = ids(sb, "contacts")[12]
    before = client(sb).crm.contacts.basic_api.get_by_id(contact, properties=["lastmodifieddate"])
    contact, old, new = _move(sb)

    after = client(sb).crm.contacts.basic_api.get_by_id(
        contact, properties=["associatedcompanyid", "lastmodifieddate"])
    assert after.properties["associatedcompanyid"] == new  # HubSpot's own property moved ...
    assert after.properties["lastmodifieddate"] > before.properties["lastmodifieddate"]  # ... and so the date
    sb.reset()
    pull(cfg)
    assert account_of(cfg, contact) == new
    assert mirror_rows(cfg, "SELECT old, new FROM contact_history WHERE contact_id = ? AND field = 'account_id'",
                       contact) == [(old, new)]
    # the search found it; the company sweep (1 call for 12 companies) found nothing to read again
    assert sb.object_requests.count("assoc_batch_read:companies") == 1
    assert sb.object_requests.count("batch_read:contacts") == 0


def test_company_move_that_moves_no_date_is_seen_by_the_company_sweep(hs) -> None:
    sb, cfg = hs
    pull(cfg, full=True)
    sb.faults.add(kind="association_dates_frozen")
    contact = ids(sb, "contacts")[12]
    before = client(sb).crm.contacts.basic_api.get_by_id(contact, properties=["lastmodifieddate"])
    contact, old, new = _move(sb)
    gone = ids(sb, "contacts")[20]  # and one contact loses its company altogether
    sb.dissociate("contacts", gone, "companies", primary_of(sb, gone))
    after = client(sb).crm.contacts.basic_api.get_by_id(contact, properties=["lastmodifieddate"])
    assert after.properties["lastmodifieddate"] == before.properties["lastmodifieddate"]

    sb.reset()
    report = pull(cfg)
    assert account_of(cfg, contact) == new
    assert account_of(cfg, gone) is None
    # calls: ceil(12 companies / 1,000) = 1 sweep; the 2 moved contacts read again in one
    # batch read (100 per call) plus their v4 company associations (1,000 per call)
    assert sb.object_requests.count("assoc_batch_read:companies") == 1
    assert sb.object_requests.count("batch_read:contacts") == 1
    assert sb.object_requests.count("assoc_batch_read:contacts") == 1
    contacts = {o.object: o for o in report.pull.objects}["contacts"]
    assert contacts.updated == 2

    # the next run finds nothing more to read again
    sb.reset()
    pull(cfg)
    assert sb.object_requests.count("batch_read:contacts") == 0


def test_company_sweep_can_be_turned_off_and_then_a_dateless_move_waits_for_a_full_pull(hs, tmp_path) -> None:
    sb, _ = hs
    cfg = write_sync_toml(tmp_path / "off" / "sync.toml", sb, extra=LIMITS + "\nsweep_associations = false")
    pull(cfg, full=True)
    sb.faults.add(kind="association_dates_frozen")
    contact, old, new = _move(sb)
    sb.reset()
    pull(cfg)
    assert account_of(cfg, contact) == old
    assert sb.object_requests.count("assoc_batch_read:companies") == 0
    pull(cfg, full=True)
    assert account_of(cfg, contact) == new


def _relabel(sb: HubSpotSandbox) -> tuple[str, str]:
    """Move a deal's Champion label from one of its contacts to another; the deal and the
    contacts keep their dates (sandbox test d7_*). Returns (added, removed) role ids."""
    deal = next(d for d in sb.records("deals") if any(a.get("label") == "Champion" for a in
                                                      d["associations"].get("contacts", [])))
    labelled = next(a["id"] for a in deal["associations"]["contacts"] if a.get("label") == "Champion")
    plain = next(a["id"] for a in deal["associations"]["contacts"]
                 if a.get("label") is None and a["id"] != labelled)
    sb.associate("deals", deal["id"], "contacts", plain, "Champion")
    sb.dissociate("deals", deal["id"], "contacts", labelled, "Champion")
    return f"{deal['id']}:{plain}:Champion", f"{deal['id']}:{labelled}:Champion"


def _live_role(cfg: Path, role_id: str) -> bool:
    rows = mirror_rows(cfg, "SELECT deleted_at FROM contact_roles WHERE id = ?", role_id)
    return bool(rows) and rows[0][0] is None


def test_deal_contact_label_change_alone_is_seen_by_the_label_sweep(hs) -> None:
    """A label added to or removed from a deal-contact pair changes no property of either
    record, so no search finds it (airbytehq/airbyte#27199; docs/reliability.md D7). The
    incremental pull's label sweep (v4 deals -> contacts, 1,000 deals per call) does."""
    sb, cfg = hs
    pull(cfg, full=True)
    added, removed = _relabel(sb)
    sb.reset()
    report = pull(cfg)
    assert _live_role(cfg, added) and not _live_role(cfg, removed)
    deals = len(sb.records("deals"))
    assert sb.object_requests.count("assoc_batch_read:deals") == math.ceil(deals / 1000) + 1  # + re-read
    assert sb.object_requests.count("batch_read:deals") == 1  # the one deal's modified date
    roles = {o.object: o for o in report.pull.objects}["contact_roles"]
    assert roles.inserted == 1 and roles.deleted >= 1
    sb.reset()
    pull(cfg)  # and the next run finds nothing to read again
    assert sb.object_requests.count("batch_read:deals") == 0


def test_without_the_sweep_a_label_change_waits_for_a_reconcile_or_a_full_pull(hs, tmp_path) -> None:
    sb, _ = hs
    cfg = write_sync_toml(tmp_path / "off" / "sync.toml", sb, extra=LIMITS + "\nsweep_associations = false")
    pull(cfg, full=True)
    added, removed = _relabel(sb)
    pull(cfg)
    assert not _live_role(cfg, added) and _live_role(cfg, removed)  # the blind spot, pinned
    assert cli_run(cfg, "sync", "--reconcile", "--pull-only").exit_code == 0
    assert not _live_role(cfg, removed)  # the reconcile retires the removed label
    pull(cfg, full=True)
    assert _live_role(cfg, added)


# ================================================================== 2. bounce reasons, enumerations


def test_sandbox_refuses_a_bounce_reason_hubspot_does_not_have(hs) -> None:
    sb, _ = hs
    api = client(sb).crm.contacts
    contact = ids(sb, "contacts")[0]
    with pytest.raises(ApiException) as e:
        api.basic_api.update(contact, simple_public_object_input={
            "properties": {"hs_email_hard_bounce_reason_enum": "MAILBOX_DISABLED"}})
    assert e.value.status == 400
    body = json.loads(e.value.body)
    assert body["category"] == "VALIDATION_ERROR"
    assert body["message"].startswith("Property values were not valid: ")
    (detail,) = json.loads(body["message"].removeprefix("Property values were not valid: "))
    assert detail["error"] == "INVALID_OPTION" and detail["name"] == "hs_email_hard_bounce_reason_enum"
    assert detail["message"] == ("MAILBOX_DISABLED was not one of the allowed options: "
                                 "[CONTENT, MAILBOX_FULL, OTHER, POLICY, SPAM, UNKNOWN_USER]")
    # a batch with one bad input is refused whole: the good input does not land either
    good, bad = ids(sb, "contacts")[1:3]
    with pytest.raises(ApiException) as e:
        api.batch_api.update(batch_input_simple_public_object_batch_input={"inputs": [
            {"id": good, "properties": {"hs_email_hard_bounce_reason_enum": "SPAM"}},
            {"id": bad, "properties": {"hs_buying_role": "CHAMPION;KINGMAKER"}}]})
    assert e.value.status == 400
    assert sb.record("contacts", good).get("hs_email_hard_bounce_reason_enum") != "SPAM"
    api.basic_api.update(contact, simple_public_object_input={
        "properties": {"hs_email_hard_bounce_reason_enum": "UNKNOWN_USER"}})
    assert sb.record("contacts", contact)["hs_email_hard_bounce_reason_enum"] == "UNKNOWN_USER"


def test_sandbox_refuses_unknown_options_of_every_enumeration_it_defines(hs) -> None:
    sb, _ = hs
    hub = client(sb)
    apis = {"contacts": hub.crm.contacts.basic_api, "companies": hub.crm.companies.basic_api,
            "deals": hub.crm.deals.basic_api, "tasks": hub.crm.objects.tasks.basic_api}
    checked = []
    for obj, api in apis.items():
        props = hub.crm.properties.core_api.get_all(obj).results
        target = ids(sb, obj)[0]
        for p in props:
            if p.type != "enumeration" or not p.options or p.modification_metadata.read_only_value:
                continue
            with pytest.raises(Exception) as e:  # each object's own ApiException class
                api.update(target, simple_public_object_input={"properties": {p.name: "NOT_AN_OPTION"}})
            assert e.value.status == 400 and "INVALID_OPTION" in e.value.body, (obj, p.name)
            checked.append(f"{obj}.{p.name}")
    assert {"contacts.hs_email_hard_bounce_reason_enum", "contacts.hs_buying_role",
            "companies.hs_ideal_customer_profile", "deals.dealstage"} <= set(checked)


BOUNCES = {  # option -> (flag kind, bouncing)
    "UNKNOWN_USER": ("hard_bounce", True),
    "MAILBOX_FULL": ("soft_bounce", False),
    "SPAM": ("refused_by_recipient", False),
    "POLICY": ("refused_by_recipient", False),
    "CONTENT": ("refused_by_recipient", False),
    "OTHER": ("unexplained_bounce", True),
}


def test_hard_bounce_reasons_are_classified_by_what_they_mean(hs) -> None:
    sb, cfg = hs
    company = ids(sb, "companies")[2]
    made = {}
    for i, option in enumerate(BOUNCES):
        made[option] = sb.create("contacts", {
            "firstname": "Bo", "lastname": f"Unce{i}", "email": f"bo.unce{i}@example.com",
            "hs_email_hard_bounce_reason_enum": option}, [("companies", company, "primary")])
    assert cli_run(cfg, "setup").exit_code == 0
    assert cli_run(cfg, "sync", "--full", "--as-of", AS_OF).exit_code in (0, 1)
    by_contact = {f["contact_id"]: f for f in flags(cfg) if f["rule"] == "bouncing_contact"}
    statuses = {c: sb.record("contacts", c).get("crmsync_status") for c in made.values()}
    for option, (kind, bouncing) in BOUNCES.items():
        flag = by_contact[made[option]]
        assert flag["evidence"]["kind"] == kind, option
        assert flag["evidence"]["bouncing"] is bouncing, option
        assert (flag["severity"] == "info") is (not bouncing), option
        assert (statuses[made[option]] == "bouncing") is bouncing, option
    spam = by_contact[made["SPAM"]]["explanation"]
    assert "was refused as spam" in spam and "Check your sending, not the contact" in spam
    assert "security policy" in by_contact[made["POLICY"]]["explanation"]
    assert "failed temporarily" in by_contact[made["MAILBOX_FULL"]]["explanation"]
    assert "did not say why" in by_contact[made["OTHER"]]["explanation"]


def test_only_a_gone_address_makes_a_bouncing_champion_a_departure(hs) -> None:
    sb, cfg = hs
    company = ids(sb, "companies")[3]
    domain = sb.record("companies", company)["domain"]
    people = {
        option: sb.create("contacts", {"firstname": "Cham", "lastname": f"Pion {option.title()}",
                                       "email": f"champ.{option.lower()}@{domain}",
                                       "hs_buying_role": "CHAMPION",
                                       "hs_email_hard_bounce_reason_enum": option},
                          [("companies", company, "primary")])
        for option in ("UNKNOWN_USER", "SPAM", "OTHER")
    }
    assert cli_run(cfg, "setup").exit_code == 0
    assert cli_run(cfg, "sync", "--full", "--as-of", AS_OF).exit_code in (0, 1)
    departed = {f["contact_id"] for f in flags(cfg) if f["rule"] == "departed_champion"}
    assert people["UNKNOWN_USER"] in departed
    assert people["SPAM"] not in departed and people["OTHER"] not in departed


# ================================================================== 3. buying roles


def test_a_contact_with_two_buying_roles_counts_both(hs) -> None:
    sb, cfg = hs
    company = ids(sb, "companies")[4]
    domain = sb.record("companies", company)["domain"]
    both = sb.create("contacts", {"firstname": "Bea", "lastname": "Both", "email": f"bea.both@{domain}",
                                  "hs_buying_role": "BUDGET_HOLDER;CHAMPION",
                                  "jobtitle": "Former VP Finance"},
                     [("companies", company, "primary")])
    legal = sb.create("contacts", {"firstname": "Lee", "lastname": "Gal", "email": f"lee.gal@{domain}",
                                   "hs_buying_role": "LEGAL_AND_COMPLIANCE"},
                      [("companies", company, "primary")])
    assert cli_run(cfg, "setup").exit_code == 0
    assert cli_run(cfg, "sync", "--full", "--as-of", AS_OF).exit_code in (0, 1)
    roles = dict(mirror_rows(cfg, "SELECT id, role FROM contact_roles WHERE contact_id IN (?, ?)"
                             " AND deleted_at IS NULL", both, legal))
    assert roles == {f"buying_role:{both}:BUDGET_HOLDER": "Economic Buyer",
                     f"buying_role:{both}:CHAMPION": "Champion",
                     f"buying_role:{legal}:LEGAL_AND_COMPLIANCE": "Legal & Compliance"}
    departed = [f for f in flags(cfg) if f["rule"] == "departed_champion" and f["contact_id"] == both]
    assert departed, "a champion with a departure title"
    assert {r["role"] for r in departed[0]["evidence"]["roles"]} >= {"Economic Buyer", "Champion"}
    # while she was there, both roles were covered on the account
    sb.update("contacts", both, {"jobtitle": "VP Finance"})
    assert cli_run(cfg, "sync", "--as-of", AS_OF).exit_code in (0, 1)
    covered = sb.record("companies", company).get("crmsync_roles_covered") or ""
    assert "Economic Buyer" in covered and "Champion" in covered and "Legal & Compliance" in covered


def test_buying_role_names_are_a_setting(hs, tmp_path) -> None:
    sb, _ = hs
    cfg = write_sync_toml(tmp_path / "named" / "sync.toml", sb,
                          extra=LIMITS + '\n[hubspot.buying_roles]\nBUDGET_HOLDER = "Budget Holder"')
    contact = sb.create("contacts", {"firstname": "Al", "lastname": "Named", "email": "al.named@example.com",
                                     "hs_buying_role": "BUDGET_HOLDER;END_USER"})
    pull(cfg, full=True)
    roles = dict(mirror_rows(cfg, "SELECT id, role FROM contact_roles WHERE contact_id = ?", contact))
    assert roles == {f"buying_role:{contact}:BUDGET_HOLDER": "Budget Holder",
                     f"buying_role:{contact}:END_USER": "End User"}


# ================================================================== 4. reconcile


def test_reconcile_removes_a_purged_contact_resolves_its_flags_and_completes_its_task(hs) -> None:
    sb, cfg = hs
    assert cli_run(cfg, "setup").exit_code == 0
    assert cli_run(cfg, "sync", "--full", "--as-of", AS_OF).exit_code in (0, 1)
    champion = DATA["manifest"]["hubspot"]["departed_champion_by_signal"]["bouncing"][0]
    open_flags = [f for f in flags(cfg) if f["contact_id"] == champion]
    assert any(f["rule"] == "departed_champion" for f in open_flags)
    task = next(t for t in sb.records("tasks")
                if str(t["properties"].get("crmsync_key", "")).endswith(f":{champion}"))
    assert task["properties"]["hs_task_status"] != "COMPLETED"

    sb.purge("contacts", champion)  # a GDPR delete: in neither the live nor the archived listing
    assert cli_run(cfg, "sync", "--as-of", AS_OF).exit_code in (0, 1)
    assert mirror_rows(cfg, "SELECT deleted_at FROM contacts WHERE id = ?", champion) == [(None,)]

    sb.reset()
    result = cli_run(cfg, "sync", "--reconcile", "--as-of", AS_OF)
    assert result.exit_code in (0, 1), result.output
    assert mirror_rows(cfg, "SELECT deleted_at IS NOT NULL FROM contacts WHERE id = ?", champion) == [(1,)]
    assert not [f for f in flags(cfg) if f["contact_id"] == champion]
    assert {f["rule"] for f in flags(cfg, "resolved") if f["contact_id"] == champion} >= {"departed_champion"}
    done = next(t for t in sb.records("tasks") if t["id"] == task["id"])
    assert done["properties"]["hs_task_status"] == "COMPLETED"

    # cost: one list call per 100 live records, crmsync's tasks by search (200 per call),
    # contact roles from v4 deal reads over the deals just listed (1,000 per call)
    counts = json.loads(mirror_rows(cfg, "SELECT counts FROM runs ORDER BY id DESC LIMIT 1")[0][0])
    rec = counts["reconcile"]
    n = {obj: len(sb.records(obj)) for obj in ("companies", "contacts", "deals")}
    assert rec["accounts"]["api_calls"] == math.ceil(n["companies"] / 100)
    assert rec["contacts"]["api_calls"] == math.ceil(n["contacts"] / 100)
    assert rec["opportunities"]["api_calls"] == math.ceil(n["deals"] / 100)
    assert rec["contact_roles"]["api_calls"] == math.ceil(n["deals"] / 1000)
    assert rec["tasks"]["api_calls"] == 1
    assert rec["contacts"]["deleted"] == 1 and rec["contacts"]["listed"] == n["contacts"]
    # the champion's roles went with it (its deal labels already with the incremental's
    # label sweep, which saw the deals' labels change)
    assert mirror_rows(cfg, "SELECT count(*) FROM contact_roles WHERE contact_id = ?"
                       " AND deleted_at IS NULL", champion) == [(0,)]


def test_archived_records_leave_the_archived_listing_after_90_days(tmp_path) -> None:
    clock = [1_800_000_000.0]
    with HubSpotSandbox(dataset=DATA, clock=lambda: clock[0]) as sb:
        contact = ids(sb, "contacts")[0]
        sb.archive("contacts", contact)
        listing = client(sb).crm.contacts.basic_api.get_page(archived=True, limit=100)
        assert contact in [r.id for r in listing.results]
        clock[0] += 89 * 86_400
        listing = client(sb).crm.contacts.basic_api.get_page(archived=True, limit=100)
        assert contact in [r.id for r in listing.results]
        clock[0] += 2 * 86_400
        listing = client(sb).crm.contacts.basic_api.get_page(archived=True, limit=100)
        assert contact not in [r.id for r in listing.results]
