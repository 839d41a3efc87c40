"""A snoozed account says so in the CRM; a snooze date crmsync cannot read is told (issue 11, 10).

Through the CLI against the Salesforce sandbox loaded with the hand-built golden
org (tests/golden/edge_cases: who is who is in its README), with the account
manager's entries typed into the exemption field through simple-salesforce, and
what crmsync wrote read back the same way:

- Departures Corp, snoozed "until 31/01/2027": its hygiene summary names the
  snooze and what it holds back; its coverage score and status stay what they
  were before the snooze; its departed champions still read "departed", with a
  reason saying they are snoozed; its open tasks are completed;
- Thin Threads, "snooze until next quarter": the summary says the date could not
  be read and which formats work;
- Hank Hard (bouncing), "snooze until next quarter": his reason says the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from simple_salesforce import Salesforce

from crmsync.connectors.salesforce.transport import build_session
from crmsync.sandbox.salesforce import PASSWORD, SECURITY_TOKEN, USERNAME, SalesforceSandbox
from crmsync.sync.cli import cli

from .helpers import write_sync_toml

SEED: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "golden" / "edge_cases" / "seed.json").read_text(encoding="utf-8")
)
AS_OF = SEED["golden"]["as_of"]  # 2026-11-01
ACCOUNT = {a["Name"]: a["Id"] for a in SEED["salesforce"]["Account"]}
PERSON = {f"{c['FirstName']} {c['LastName']}": c["Id"] for c in SEED["salesforce"]["Contact"]}
SNOOZED_NOTE = "Snoozed until 31 January 2027 by the account team: not followed up until then."


@pytest.fixture
def sandbox() -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox(dataset=SEED) as sb:
        yield sb


def _cli(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--config", str(config)], catch_exceptions=False)


def _client(sb: SalesforceSandbox) -> Salesforce:
    return Salesforce(
        username=USERNAME, password=PASSWORD, security_token=SECURITY_TOKEN,
        session=build_session(login_url=sb.url, instance_url=sb.url, ca_file=sb.ca_file),
    )  # fmt: skip


def _account(sf: Salesforce, name: str) -> dict[str, Any]:
    return sf.Account.get(ACCOUNT[name])  # type: ignore[no-any-return]


def _contact(sf: Salesforce, name: str) -> dict[str, Any]:
    return sf.Contact.get(PERSON[name])  # type: ignore[no-any-return]


def _open_tasks(sf: Salesforce, account: str) -> list[str]:
    rows = sf.query_all(
        "SELECT Id, Crmsync_Key__c, IsClosed FROM Task WHERE Crmsync_Key__c != null"
    )["records"]
    return [t["Crmsync_Key__c"] for t in rows if ACCOUNT[account] in t["Crmsync_Key__c"]
            and not t["IsClosed"]]  # fmt: skip


def test_a_snoozed_account_says_so_in_the_crm_and_an_unreadable_snooze_is_told(
    tmp_path: Path, sandbox: SalesforceSandbox
) -> None:
    config = write_sync_toml(
        tmp_path / "sync.toml", sandbox, extra='left_company_field = "Left_Company__c"'
    )
    assert _cli(config, "setup").exit_code == 0
    first = _cli(config, "sync", "--full", "--as-of", AS_OF)
    assert first.exit_code == 0, first.output
    sf = _client(sandbox)
    before = _account(sf, "Departures Corp")
    assert before["Crmsync_Hygiene_Summary__c"].startswith("6 departed champions")
    assert _open_tasks(sf, "Departures Corp")  # departed champions are followed up

    # The account manager snoozes Departures Corp and mistypes two more snoozes.
    sf.Account.update(ACCOUNT["Departures Corp"], {"Crmsync_Exempt__c": "snooze until 31/01/2027"})
    sf.Account.update(ACCOUNT["Thin Threads"], {"Crmsync_Exempt__c": "snooze until next quarter"})
    sf.Contact.update(PERSON["Hank Hard"], {"Crmsync_Exempt__c": "snooze until next quarter"})
    second = _cli(config, "sync", "--as-of", AS_OF)
    assert second.exit_code == 0, second.output

    snoozed = _account(sf, "Departures Corp")
    assert snoozed["Crmsync_Hygiene_Summary__c"] == (
        "Snoozed until 31 January 2027 by the account team: 7 departed champions and 1 bouncing "
        "contact are not followed up until then."
    )
    # The score does not pretend the departed champions are gone.
    for field in (
        "Crmsync_Coverage_Score__c",
        "Crmsync_Coverage_Status__c",
        "Crmsync_Stakeholders__c",
    ):
        assert snoozed[field] == before[field], field
    fay = _contact(sf, "Fay Former")
    assert fay["Crmsync_Status__c"] == "departed"
    assert fay["Crmsync_Reason__c"].endswith(SNOOZED_NOTE)
    assert _open_tasks(sf, "Departures Corp") == []  # not followed up until then

    hint = (
        "write it as \u201csnooze until 31 January 2027\u201d, or with the date as 2027-01-31 or "
        "31/01/2027."
    )
    thin = _account(sf, "Thin Threads")["Crmsync_Hygiene_Summary__c"]
    assert thin == (
        "Relies on too few people. The snooze in \u201csnooze until next quarter\u201d could not "
        f"be read, so the account is not snoozed: {hint}"
    )
    assert _open_tasks(sf, "Thin Threads")  # an unreadable snooze snoozes nothing
    hank = _contact(sf, "Hank Hard")
    assert hank["Crmsync_Status__c"] == "bouncing"
    assert hank["Crmsync_Reason__c"].endswith(
        "The snooze in \u201csnooze until next quarter\u201d could not be read, so this contact "
        f"is not snoozed: {hint}"
    )
    assert _account(sf, "Bounce House")["Crmsync_Hygiene_Summary__c"].endswith(
        f"The snooze on the record of Hank Hard could not be read, so that contact is not "
        f"snoozed: {hint}"
    )
