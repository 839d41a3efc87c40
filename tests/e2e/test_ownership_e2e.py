"""Values people own stay theirs (issue 11): as an account manager and an admin see it.

Through the CLI against both sandbox CRMs (simple-salesforce and
hubspot-api-client over real HTTP); what stays in the CRM is read back from
the sandbox's own records.

- a status and reason an account manager typed on a contact crmsync never
  flagged survive every run, also after a title change makes crmsync want
  "departed" (a conflict, reported);
- a rebuilt mirror (the file deleted, `sync --full`) overwrites nothing a
  person or a workflow set: its dry run plans no write and lists the conflicts;
- conflicts show in `crmsync status` and `crmsync conflicts`, are logged once
  across three runs, and can be handed back (the next run writes crmsync's
  value and its signature, then no conflict); blanking the field hands it back;
- on HubSpot, a workflow's revert reads as a workflow and a UI edit as the
  person who made it (property history), for one history call;
- a HubSpot task for an account whose owner is deactivated goes to
  `default_owner`, and without it to the active owner with the most accounts,
  with a warning naming the account.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from crmsync.sandbox.generate import DEFAULT_AS_OF, generate
from crmsync.sandbox.hubspot import HubSpotSandbox
from crmsync.sandbox.salesforce import SalesforceSandbox
from crmsync.sync import ownership
from crmsync.sync.cli import cli

from .helpers import write_sync_toml

AS_OF = DEFAULT_AS_OF.strftime("%Y-%m-%dT%H:%M:%SZ")
DATA = generate(seed=23, accounts=10)
HS_EXTRA = "requests_per_10s = 1000\nsearches_per_second = 100"
KEY_SPONSOR = "Key sponsor - AM owns this relationship"

SF_FIELDS = {
    "accounts": {"coverage_status": "Crmsync_Coverage_Status__c", "coverage_score": "Crmsync_Coverage_Score__c",
                 "signature": "Crmsync_Signature__c"},
    "contacts": {"status": "Crmsync_Status__c", "reason": "Crmsync_Reason__c", "title": "Title",
                 "signature": "Crmsync_Signature__c"},
}  # fmt: skip
HS_FIELDS = {
    "accounts": {"coverage_status": "crmsync_coverage_status", "coverage_score": "crmsync_coverage_score",
                 "signature": "crmsync_signature"},
    "contacts": {"status": "crmsync_status", "reason": "crmsync_reason", "title": "jobtitle",
                 "signature": "crmsync_signature"},
}  # fmt: skip


class Crm:
    """One sandbox CRM, its sync.toml, and the CLI pointed at it."""

    def __init__(self, name: str, sb: Any, config: Path) -> None:
        self.name, self.sb, self.config = name, sb, config

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(cli, [*args, "--config", str(self.config)], catch_exceptions=False)

    def sync(self, *args: str) -> Result:
        result = self.cli("sync", "--as-of", AS_OF, *args)
        assert result.exit_code == 0, result.output
        return result

    @property
    def mirror(self) -> Path:
        return self.config.parent / "crmsync.db"

    # -------------------------------------------------------- the CRM, read back
    def records(self, obj: str) -> dict[str, dict[str, Any]]:
        """{id: {canonical field: value}} of live accounts or contacts, as the CRM holds them."""
        names = (SF_FIELDS if self.name == "salesforce" else HS_FIELDS)[obj]
        out: dict[str, dict[str, Any]] = {}
        if self.name == "salesforce":
            for r in self.sb.records("Account" if obj == "accounts" else "Contact"):
                if not r.get("IsDeleted"):
                    out[r["Id"]] = {k: r.get(v) for k, v in names.items()}
                    out[r["Id"]]["account_id"] = r.get("AccountId")
        else:
            for r in self.sb.records("companies" if obj == "accounts" else "contacts"):
                out[r["id"]] = {k: r["properties"].get(v) for k, v in names.items()}
                companies = r.get("associations", {}).get("companies") or []
                out[r["id"]]["account_id"] = companies[0]["id"] if companies else None
        return out

    def edit(self, obj: str, rid: str, **values: Any) -> None:
        """A person changes fields in the CRM's UI (HubSpot: history says CRM_UI)."""
        names = (SF_FIELDS if self.name == "salesforce" else HS_FIELDS)[obj]
        fields = {names[k]: v for k, v in values.items()}
        if self.name == "salesforce":
            self.sb.update("Account" if obj == "accounts" else "Contact", rid, fields)
        else:
            self.sb.update("companies" if obj == "accounts" else "contacts", rid,
                           {k: "" if v is None else v for k, v in fields.items()})  # fmt: skip

    def conflicts(self) -> list[dict[str, Any]]:
        result = self.cli("conflicts", "--format", "json")
        assert result.exit_code == 0, result.output
        return json.loads(result.output)


@pytest.fixture(params=["salesforce", "hubspot"])
def crm(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Crm]:
    name = request.param
    if name == "salesforce":
        sb: Any = SalesforceSandbox(dataset=DATA, sleep_ms=lambda ms: None).start()
    else:
        sb = HubSpotSandbox(dataset=DATA, sleep=lambda s: None).start()
    try:
        config = write_sync_toml(tmp_path / "sync.toml", sb, extra=HS_EXTRA if name == "hubspot" else "")
        c = Crm(name, sb, config)
        assert c.cli("setup").exit_code == 0
        yield c
    finally:
        sb.stop()


@pytest.fixture
def hubspot(tmp_path: Path) -> Iterator[Crm]:
    sb = HubSpotSandbox(dataset=DATA, sleep=lambda s: None).start()
    try:
        config = write_sync_toml(tmp_path / "sync.toml", sb, extra=HS_EXTRA)
        c = Crm("hubspot", sb, config)
        assert c.cli("setup").exit_code == 0
        yield c
    finally:
        sb.stop()


def _unflagged_contact(crm: Crm) -> str:
    """A contact at an account whose status crmsync left blank (never flagged)."""
    contacts = crm.records("contacts")
    return sorted(cid for cid, c in contacts.items() if c["status"] is None and c["account_id"])[0]


def _written_account(crm: Crm) -> tuple[str, dict[str, Any]]:
    accounts = crm.records("accounts")
    aid = sorted(a for a, v in accounts.items() if v["coverage_status"])[0]
    return aid, accounts[aid]


def _other_status(status: str) -> str:
    return "green" if status != "green" else "red"


def _warnings(caplog: pytest.LogCaptureFixture, record_id: str) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records
        if r.name == "crmsync.sync.conflicts" and r.levelno == logging.WARNING
        and getattr(r, "record_id", None) == record_id
    ]  # fmt: skip


# ---------------------------------------------------------------- a person's value survives


def test_a_persons_status_and_reason_survive_on_a_contact_crmsync_never_flagged(crm: Crm) -> None:
    crm.sync("--full")
    cid = _unflagged_contact(crm)
    crm.edit("contacts", cid, status="ok", reason=KEY_SPONSOR)

    crm.sync()  # nothing to say about this contact: the person's words stay
    held = crm.records("contacts")[cid]
    assert (held["status"], held["reason"]) == ("ok", KEY_SPONSOR)
    assert crm.conflicts() == []

    crm.edit("contacts", cid, title="Former Head of Operations")  # crmsync now wants "departed"
    out = crm.sync().output
    held = crm.records("contacts")[cid]
    assert (held["status"], held["reason"]) == ("ok", KEY_SPONSOR)
    assert held["signature"] is None  # crmsync never wrote this record
    conflicts = [c for c in crm.conflicts() if c["record_id"] == cid]
    assert {c["field"]: (c["wanted"], c["held"]) for c in conflicts}["status"] == ("departed", "ok")
    assert {c["field"] for c in conflicts} == {"status", "reason"}  # they move together
    who = "person or workflow" if crm.name == "salesforce" else "person"
    assert {c["who"] for c in conflicts} == {who}
    assert f"[{cid}] status: CRM has ok" in out

    # handing back the status hands back the reason with it: the next run writes both
    result = crm.cli("conflicts", "handback", "--crm", crm.name, "--record", cid, "--field", "status")
    assert "handed back 2 values" in result.output
    crm.sync()
    held = crm.records("contacts")[cid]
    assert held["status"] == "departed" and held["reason"] not in (None, KEY_SPONSOR)
    assert set(ownership.parse(held["signature"])) == {"status", "reason"}
    assert crm.conflicts() == []


# ---------------------------------------------------------------- a rebuilt mirror


def test_a_rebuilt_mirror_overwrites_nothing_a_person_or_a_workflow_set(crm: Crm) -> None:
    crm.sync("--full")
    aid, account = _written_account(crm)
    mine = _other_status(account["coverage_status"])
    crm.edit("accounts", aid, coverage_status=mine)  # an account manager disagrees
    flagged = sorted(c for c, v in crm.records("contacts").items() if v["status"] in ("stale", "bouncing"))
    cid = flagged[0]
    crm.edit("contacts", cid, reason="Spoke to her last week; on parental leave")
    other, _ = sorted((a, v) for a, v in crm.records("accounts").items() if v["coverage_score"] is not None and a != aid)[0]
    if crm.name == "hubspot":  # a workflow sets the score (history: AUTOMATION_PLATFORM)
        crm.sb.update("companies", other, {"crmsync_coverage_score": "1"}, source="workflow")
    else:
        crm.edit("accounts", other, coverage_score=1)
    before = {"accounts": crm.records("accounts"), "contacts": crm.records("contacts")}

    for suffix in ("", "-wal", "-shm"):  # the README: the mirror can always be rebuilt
        Path(f"{crm.mirror}{suffix}").unlink(missing_ok=True)
    preview = crm.sync("--full", "--dry-run").output
    assert "0 task(s) to create, 0 to update, 0 to complete, 0 account(s) and 0 contact(s) to update" in preview
    assert "3 conflict(s)" in preview
    assert "nothing was written" in preview

    crm.sync("--full")
    after = {"accounts": crm.records("accounts"), "contacts": crm.records("contacts")}
    assert after == before  # nothing a person or a workflow set was overwritten
    assert {(c["record_id"], c["field"]) for c in crm.conflicts()} == {
        (aid, "coverage_status"), (cid, "reason"), (other, "coverage_score"),
    }  # fmt: skip


# ---------------------------------------------------------------- the lifecycle


def test_conflicts_show_in_status_are_logged_once_and_can_be_handed_back(
    crm: Crm, caplog: pytest.LogCaptureFixture
) -> None:
    crm.sync("--full")
    aid, account = _written_account(crm)
    wanted = account["coverage_status"]
    mine = _other_status(wanted)
    crm.edit("accounts", aid, coverage_status=mine)
    with caplog.at_level(logging.INFO):
        outputs = [crm.sync().output for _ in range(3)]
    assert len(_warnings(caplog, aid)) == 1  # logged once, not every run
    assert "1 new this run" in outputs[0] and "0 new this run" in outputs[2]
    assert crm.records("accounts")[aid]["coverage_status"] == mine

    status = crm.cli("status").output
    assert f"open conflicts ({crm.name}): 1" in status
    assert aid in status and "coverage_status" in status
    data = json.loads(crm.cli("status", "--format", "json").output)
    [row] = data["conflicts"]
    assert (row["record_id"], row["field"], row["wanted"], row["held"]) == (aid, "coverage_status", wanted, mine)
    assert row["since"] and row["who"]
    listing = crm.cli("conflicts").output
    assert "coverage_status" in listing and "handback" in listing

    result = crm.cli("conflicts", "handback", "--crm", crm.name, "--record", aid, "--field", "coverage_status")
    assert result.exit_code == 0 and "handed back 1 value" in result.output
    crm.sync()
    landed = crm.records("accounts")[aid]
    assert landed["coverage_status"] == wanted
    assert ownership.parse(landed["signature"])["coverage_status"] == ownership.digest("coverage_status", wanted)
    assert crm.conflicts() == []
    assert "open conflicts" not in crm.cli("status").output
    again = crm.sync().output
    assert "planned: nothing to write" in again and "conflicts" not in again


def test_handing_back_needs_a_record_with_an_open_conflict(crm: Crm) -> None:
    crm.sync("--full")
    result = crm.cli("conflicts", "handback", "--crm", crm.name, "--record", "no-such-id")
    assert result.exit_code == 2 and "no open conflict" in result.output
    result = crm.cli("conflicts", "handback", "--crm", crm.name)
    assert result.exit_code == 2 and "--record ID" in result.output


def test_blanking_a_field_hands_it_back(crm: Crm) -> None:
    crm.sync("--full")
    aid, account = _written_account(crm)
    crm.edit("accounts", aid, coverage_status=_other_status(account["coverage_status"]))
    crm.sync()
    assert [c["record_id"] for c in crm.conflicts()] == [aid]
    crm.edit("accounts", aid, coverage_status=None)  # the account manager clears it
    crm.sync()
    assert crm.records("accounts")[aid]["coverage_status"] == account["coverage_status"]
    assert crm.conflicts() == []


# ---------------------------------------------------------------- who changed it (HubSpot)


def test_hubspot_workflow_revert_reads_as_a_workflow_and_a_ui_edit_as_the_person(hubspot: Crm) -> None:
    crm = hubspot
    accounts = sorted(crm.records("accounts"))
    reverted, edited = accounts[0], accounts[1]
    crm.sb.faults.add(kind="workflow_revert", match={"object": "companies", "id": reverted},
                      set={"crmsync_coverage_score": "1"})
    crm.sync("--full")
    assert crm.records("accounts")[reverted]["coverage_score"] == "1"  # the workflow ran after us
    wrote = crm.records("accounts")[edited]["coverage_status"]
    crm.edit("accounts", edited, coverage_status=_other_status(wrote))

    crm.sync()
    rows = {(c["record_id"], c["field"]): c for c in crm.conflicts()}
    revert = rows[(reverted, "coverage_score")]
    assert revert["who"] == "workflow" and revert["after_write"] is True
    edit = rows[(edited, "coverage_status")]
    owner = next(o for o in DATA["hubspot"]["owners"] if not o.get("archived"))
    assert edit["who"] == "person" and edit["who_name"] == f"{owner['firstName']} {owner['lastName']}"
    runs = _runs(crm.mirror)
    assert runs[-1]["api_by_operation"]["history"] == 1  # one batch read for both companies
    assert runs[-1]["counts"]["conflicts"]["history_calls"] == 1
    listing = crm.cli("conflicts").output
    assert "a workflow" in listing and "(a person)" in listing

    crm.sync()  # known conflicts: no history call again
    assert "history" not in _runs(crm.mirror)[-1]["api_by_operation"]


def _runs(mirror: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(mirror)
    try:
        rows = conn.execute("SELECT counts, api_by_operation FROM runs ORDER BY id").fetchall()
    finally:
        conn.close()
    return [{"counts": json.loads(c or "{}"), "api_by_operation": json.loads(a or "{}")} for c, a in rows]


# ---------------------------------------------------------------- task owners (HubSpot)


def _orphan(hs: HubSpotSandbox, name: str = "Orphan Works") -> str:
    """A company owned by a deactivated (archived) owner, with one contact: single-threaded."""
    slug = name.split()[0].lower()
    gone = hs.add_owner({"firstName": "Gone", "lastName": "Away", "email": f"gone@{slug}.test",
                         "archived": True})  # fmt: skip
    aid = hs.create("companies", {"name": name, "domain": f"{slug}.example",
                                  "hubspot_owner_id": gone}, source="import")  # fmt: skip
    hs.create("contacts", {"firstname": "Olga", "lastname": "Only", "email": f"olga@{slug}.example"},
              associations=[("companies", aid, "primary")], source="import")  # fmt: skip
    return aid


def _tasks_of(hs: HubSpotSandbox, aid: str) -> list[dict[str, Any]]:
    return [
        t for t in hs.records("tasks")
        if t["properties"].get("crmsync_key") and aid in {c["id"] for c in t["associations"].get("companies", [])}
    ]  # fmt: skip


def test_hubspot_task_of_a_deactivated_owner_goes_to_default_owner(hubspot: Crm) -> None:
    crm = hubspot
    aid = _orphan(crm.sb)
    default = sorted(o["id"] for o in DATA["hubspot"]["owners"] if not o.get("archived"))[-1]
    crm.config.write_text(
        crm.config.read_text() + f'\n[writeback]\ndefault_owner = {{ hubspot = "{default}" }}\n'
    )
    crm.sync("--full")
    tasks = _tasks_of(crm.sb, aid)
    assert tasks and {t["properties"]["hubspot_owner_id"] for t in tasks} == {default}
    assert f"assigned to default_owner {default}" in crm.cli("status").output


def test_hubspot_task_without_default_owner_goes_to_the_busiest_owner_with_a_warning(
    hubspot: Crm, caplog: pytest.LogCaptureFixture
) -> None:
    crm = hubspot
    aid = _orphan(crm.sb)
    active = {o["id"] for o in DATA["hubspot"]["owners"] if not o.get("archived")}
    owned = Counter(c["properties"].get("hubspot_owner_id") for c in DATA["hubspot"]["companies"])
    busiest = sorted((-n, o) for o, n in owned.items() if o in active)[0][1]

    def warnings() -> list[logging.LogRecord]:
        found = [r for r in caplog.records
                 if r.name == "crmsync.sync.plan" and "default_owner" in r.getMessage()]  # fmt: skip
        caplog.clear()
        return found

    with caplog.at_level(logging.WARNING):
        crm.sync("--full")
        tasks = _tasks_of(crm.sb, aid)
        assert tasks and {t["properties"]["hubspot_owner_id"] for t in tasks} == {busiest}
        [warning] = warnings()
        assert aid in warning.account_ids and warning.owner_id == busiest
        status = crm.cli("status").output
        assert "tasks of accounts without an active owner (hubspot)" in status
        assert "set [writeback] default_owner" in status

        # Said once: neither a full resync nor a run that re-plans the account repeats it.
        crm.sync("--full")
        crm.sb.update("contacts", _contact_of(crm.sb, aid), {"jobtitle": "Buyer"}, source="import")
        crm.sync()
        assert warnings() == []
        assert "tasks of accounts without an active owner (hubspot)" in crm.cli("status").output

        # A second account without an owner: the warning names it, and only it.
        second = _orphan(crm.sb, "Stray Holdings")
        crm.sync()
        [warning] = warnings()
        assert warning.account_ids == [second] and warning.accounts == 1
        assert {t["properties"]["hubspot_owner_id"] for t in _tasks_of(crm.sb, second)} == {busiest}

        # Given an active owner, the first leaves the list; losing it again is news again.
        crm.sb.update("companies", aid, {"hubspot_owner_id": busiest}, source="import")
        crm.sync()
        assert warnings() == []
        crm.sb.update("companies", aid, {"hubspot_owner_id": ""}, source="import")  # no owner
        crm.sync()
        [warning] = warnings()
        assert warning.account_ids == [aid]


def _contact_of(hs: HubSpotSandbox, aid: str) -> str:
    return next(
        c["id"] for c in hs.records("contacts")
        if aid in {a["id"] for a in c.get("associations", {}).get("companies", [])}
    )  # fmt: skip
