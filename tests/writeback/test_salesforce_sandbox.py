"""Write-back through the real Salesforce connector and simple-salesforce to the loopback sandbox.

A generated org is set up (`ensure_fields`), pulled with sync/pull.py into a
real mirror, evaluated by the real rules, planned, queued and drained. What
landed is read back from the sandbox's own records, never through crmsync.
"""

from __future__ import annotations

from typing import Any

import pytest

from crmsync.connectors.base import Secret
from crmsync.connectors.retry import RetryPolicy
from crmsync.connectors.salesforce import SalesforceConnector, Settings
from crmsync.sandbox.generate import generate
from crmsync.sandbox.salesforce import PASSWORD, SECURITY_TOKEN, USERNAME, SalesforceSandbox
from crmsync.state import outbox
from crmsync.state.model import WriteKind
from crmsync.sync.drain import drain
from crmsync.sync.plan import enqueue, format_plan

from .harness import Harness

DATA = generate(seed=11, accounts=30, crms=("salesforce",))
CRM = "salesforce"


@pytest.fixture(scope="module")
def sandbox():
    with SalesforceSandbox(DATA).start() as sb:
        yield sb


@pytest.fixture
def sb(sandbox):
    sandbox.reset(DATA)
    return sandbox


class Org(Harness):
    """crmsync pointed at the sandbox: a connector, a mirror, and one run at a time."""

    def __init__(self, sb: Any, tmp_path: Any) -> None:
        self.sb = sb
        self.conn = SalesforceConnector(
            Settings(login_url=sb.url, instance_url=sb.url, ca_file=sb.ca_file, username=USERNAME,
                     password=Secret(PASSWORD, "test"), security_token=Secret(SECURITY_TOKEN, "test")),
            sleep=lambda s: None, retry=RetryPolicy(max_attempts=3, max_elapsed_seconds=5),
        )  # fmt: skip
        super().__init__(self.conn, tmp_path)

    def tasks(self) -> list[dict[str, Any]]:
        return [
            t for t in self.sb.records("Task") if t.get("Crmsync_Key__c") and not t.get("IsDeleted")
        ]


@pytest.fixture
def org(sb, tmp_path):
    o = Org(sb, tmp_path)
    yield o
    o.db.conn.close()


def test_w10_first_run_lands_everything_second_run_writes_nothing(org, sb):
    p, report = org.run()
    creates = [i for i in p.items if i.kind is WriteKind.CREATE_TASK]
    assert creates and report.rejected == 0 and report.written == len(p.items)
    tasks = org.tasks()
    assert sorted(t["Crmsync_Key__c"] for t in tasks) == sorted(i.payload["key"] for i in creates)
    account = next(i for i in p.items if i.kind is WriteKind.UPDATE_ACCOUNT)
    stored = sb.record("Account", account.target_id)
    assert stored["Crmsync_Coverage_Status__c"] == account.payload["coverage_status"]
    sb.requests.reset()
    second, report2 = org.run()
    assert second.empty, format_plan(second)
    assert sb.requests.writes() == 0 and report2.calls == 0
    assert len(org.tasks()) == len(tasks)


def test_w8_field_edited_in_salesforce_is_not_overwritten(org, sb):
    p, _ = org.run()
    aid = next(i.target_id for i in p.items if i.kind is WriteKind.UPDATE_ACCOUNT
               and "coverage_score" in i.payload)  # fmt: skip
    sb.update("Account", aid, {"Crmsync_Coverage_Score__c": 99})
    second, _ = org.run()
    assert [(c.record_id, c.field, c.crm_value) for c in second.conflicts] == [
        (aid, "coverage_score", 99)
    ]
    assert sb.record("Account", aid)["Crmsync_Coverage_Score__c"] == 99
    assert [(d.record_id, d.field) for d in org.drifts] == [(aid, "coverage_score")]


def test_w1_rejected_contact_stays_in_outbox_with_salesforce_message(org, sb):
    p = org.plan()
    contacts = [i.target_id for i in p.items if i.kind is WriteKind.UPDATE_CONTACT]
    sb.faults.add(kind="reject_write", match={"object": "Contact", "id": contacts[0]},
                  code="FIELD_CUSTOM_VALIDATION_EXCEPTION", message="Status is locked")  # fmt: skip
    enqueue(org.db, p)
    report = drain(org.db, org.conn, CRM, batch_size=200, max_attempts=5)
    assert report.rejected == 1 and report.written == len(p.items) - 1
    [dead] = outbox.list_items(org.db, "dead", crm=CRM)
    assert dead["target_id"] == contacts[0]
    assert dead["last_error_code"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert "Status is locked" in dead["last_error"]
    assert sb.record("Contact", contacts[1])["Crmsync_Status__c"] is not None


def test_w5_killed_after_salesforce_created_the_tasks_no_duplicates(org, sb):
    enqueue(org.db, org.plan())
    while batch := outbox.claim(org.db, CRM, 200):
        org.conn.write(batch)  # Salesforce applies it; the process dies before mark()
    created = len(org.tasks())
    report = drain(org.db, org.conn, CRM, batch_size=200, max_attempts=5)
    assert report.recovered == created and outbox.depth(org.db, CRM)["inflight"] == 0
    keys = [t["Crmsync_Key__c"] for t in org.tasks()]
    assert len(keys) == len(set(keys)) == created
    assert org.plan().empty


def test_reengaged_contact_resolves_its_task_and_updates_the_account(org, sb):
    p, _ = org.run()
    tidy = next(i for i in p.items if i.kind is WriteKind.CREATE_TASK
                and i.payload["subject"].endswith(": 1 without recent activity"))  # fmt: skip
    account = tidy.payload["account_id"]
    [(contact,)] = org.db.execute(
        "SELECT id FROM contacts WHERE account_id = ? AND json_extract(owned, '$.status') = 'stale'",
        [account],
    ).fetchall()
    sb.update("Contact", contact, {"LastActivityDate": "2026-10-30"})  # a call was logged
    second, report = org.run()
    assert report.rejected == 0
    [task] = [t for t in org.tasks() if t["Crmsync_Key__c"] == tidy.payload["key"]]
    assert task["Status"] == "Completed"
    assert "Closed automatically on 1 November 2026" in task["Description"]
    assert sb.record("Contact", contact)["Crmsync_Status__c"] == "ok"
    changed = [i for i in second.items if i.kind is WriteKind.UPDATE_ACCOUNT]
    assert [i.target_id for i in changed] == [account]
    assert sb.record("Account", account)["Crmsync_Engaged__c"] == changed[0].payload["engaged"]
