"""Successors end to end: the golden org in each sandbox CRM, through the CLI and the
official clients; an outside people-data provider (a loopback fake, then the CSV one).

- the departed champion's task in the CRM names who could take the role, and why;
- `crmsync flags --format json` carries the suggestions as evidence;
- the provider is asked only about accounts with a departed champion or a missing role
  that the CRM cannot fill with three people, within `max_calls_per_run`, and an answer
  is cached in the mirror (a second run asks only what is left);
- outside people appear in the task marked as outside data, with their source, clipped.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from crmsync.sandbox.hubspot import HubSpotSandbox
from crmsync.sandbox.salesforce import SalesforceSandbox
from tests.golden.test_golden import AS_OF, SEED, _cli, _fragment, ids, write_config

from . import fake_people

CRMS = ("salesforce", "hubspot")
NEEDY = {"staleedges.com", "departures.com", "newco.com", "warmlead.io"}


# The departed champion's task as the account manager reads it in the CRM (written by hand).
RENEWAL = "the open opportunity \u201cSuccession Ltd - Renewal\u201d"
OLGA_TASK = f"""\
Olga Outgoing (Champion) may have left Succession Ltd. Olga Outgoing is the Champion on \
{RENEWAL}, closing 31 March 2027. Signs: the job title reads \u201cFormer VP Operations\u201d. \
Check with Succession Ltd whether Olga Outgoing is still there; if not, find and engage a new \
champion at Succession Ltd.

Who could take the Champion role (engaged in the last 90 days):
- Nadia North, \u201cVP Operations\u201d (VP or head level, operations like Olga Outgoing), \
Decision Maker on {RENEWAL}
- Omar Oak, \u201cDirector of Operations\u201d (director level, operations like Olga Outgoing)
- Quinn Quill, \u201cHead of Finance\u201d (VP or head level), Economic Buyer on {RENEWAL}

Still in the Champion role: Vera Vale.

This task is kept up to date automatically and closes itself once the records show the \
problem is fixed."""


def tasks(crm: str, sb: Any) -> dict[str, str]:
    """crmsync's task key -> task body, read from the sandbox CRM."""
    if crm == "salesforce":
        return {t["Crmsync_Key__c"]: t.get("Description") or "" for t in sb.records("Task")
                if t.get("Crmsync_Key__c")}  # fmt: skip
    return {t["properties"]["crmsync_key"]: t["properties"].get("hs_task_body") or ""
            for t in sb.records("tasks") if t["properties"].get("crmsync_key")}  # fmt: skip


def lookups(directory: Path) -> list[tuple[str, str, int]]:
    conn = sqlite3.connect(directory / "crmsync.db")
    try:
        return conn.execute(
            "SELECT domain, role, found FROM enrichment_lookups ORDER BY domain, role"
        ).fetchall()
    finally:
        conn.close()


def sandbox_for(crm: str) -> Any:
    return (SalesforceSandbox if crm == "salesforce" else HubSpotSandbox)(dataset=SEED)


@pytest.mark.parametrize("crm", CRMS)
def test_successors_and_a_loopback_provider_through_the_crm(crm, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(fake_people.register(tmp_path / "site")))
    fake_people.CALLS.clear()
    fragment = {**_fragment(), "enrichment": {"provider": "fake", "max_calls_per_run": 3}}
    with sandbox_for(crm) as sb:
        config = write_config(tmp_path, sb, crm, fragment)
        _cli(config, "setup")
        out = _cli(config, "sync", "--full", "--as-of", AS_OF)
        # 8 lookups wanted: Stale Edges, NewCo Landing and Warmlead Ltd (Economic Buyer, Champion),
        # Departures Corp (Champion, Economic Buyer); the others have 3 people in the CRM.
        assert (
            "outside people-data (fake): 3 calls, 2 people found, 0 answered from the cache, "
            "5 left for the next run (max_calls_per_run)"
        ) in out
        first_calls = list(fake_people.CALLS)
        # Within the budget, and only about accounts that need someone.
        assert len(first_calls) == 3
        assert {d for d, _ in first_calls} <= NEEDY
        assert ("staleedges.com", "Economic Buyer") in first_calls
        assert len(lookups(tmp_path)) == 3

        _cli(config, "sync", "--as-of", AS_OF)
        second_calls = fake_people.CALLS[len(first_calls):]
        assert not set(second_calls) & set(first_calls), "a cached answer is not asked again"
        assert {d for d, _ in second_calls} <= NEEDY
        for _ in range(4):
            _cli(config, "sync", "--as-of", AS_OF)
        asked = set(fake_people.CALLS)
        assert {d for d, _ in asked} == NEEDY  # healthy, covered and exempt accounts never
        assert len(asked) == len(fake_people.CALLS), "each (account, role) asked once"

        flags = json.loads(_cli(config, "flags", "--format", "json"))
        i = ids(crm)
        body = tasks(crm, sb)
        key = f"single_threaded_account:{crm}:{i['Stale Edges']}:{i['Stale Edges']}"
        assert (
            "From outside data, not in the CRM (check before reaching out):\n- Pat Prospect, "
            "\u201cVP Procurement\u201d, pat.prospect@staleedges.com (source: loopback fake)\n"
        ) in body[key]
        assert "add people from the buying committee" in body[key]

        olga = f"departed_champion:{crm}:{i['Succession Ltd']}:{i['Olga Outgoing']}"
        assert body[olga] == OLGA_TASK

        stale = next(f for f in flags if f["rule"] == "single_threaded_account"
                     and f["account_id"] == i["Stale Edges"])  # fmt: skip
        by_role = {s["role"]: s for s in stale["evidence"]["successors"]}
        assert by_role["Economic Buyer"]["outside"][0] == {
            "name": "Pat Prospect", "title": "VP Procurement",
            "email": "pat.prospect@staleedges.com", "title_fit": 5,
            "source": "loopback fake", "outside_data": True,
            "why": "Pat Prospect, \u201cVP Procurement\u201d, pat.prospect@staleedges.com "
                   "(source: loopback fake)",
        }  # fmt: skip

        # The leader report: a departed champion of a renewing account is a top risk, with
        # who could take over; the account's findings carry the whole explanation.
        md = _cli(config, "report", "--format", "md")
        assert "Who could take over: Champion: Eli Economic" in md
        _cli(config, "report", "--html", str(tmp_path / "report.html"))
        page = (tmp_path / "report.html").read_text(encoding="utf-8")
        assert "<strong>Who could take over:</strong> Champion: Eli Economic" in page
        assert "Who could take the Champion role (engaged in the last 90 days): Nadia North" in page

        warm = f"single_threaded_account:{crm}:{i['Warmlead Ltd']}:{i['Warmlead Ltd']}"
        text = body[warm]
        assert "From outside data" in text and "Red LongLong" in text and "\u2026" in text
        assert "\x1b" not in text and "\x00" not in text and len(text) < 4000


def test_the_csv_provider_through_the_entry_point(tmp_path):
    people = tmp_path / "people.csv"
    people.write_text(
        "domain,name,title,email,role\n"
        "www.staleedges.com,Cal Csv,CFO,cal@staleedges.com,Economic Buyer\n"
        "staleedges.com,Chi Champ,VP Operations,,\n"
        "healthyco.com,Never Asked,CEO,,\n",
        encoding="utf-8",
    )
    fragment = {**_fragment(), "enrichment": {"provider": "csv", "csv_path": str(people)}}
    with sandbox_for("salesforce") as sb:
        config = write_config(tmp_path, sb, "salesforce", fragment)
        _cli(config, "setup")
        _cli(config, "sync", "--full", "--as-of", AS_OF)
        i = ids("salesforce")
        key = f"single_threaded_account:salesforce:{i['Stale Edges']}:{i['Stale Edges']}"
        body = tasks("salesforce", sb)[key]
        found = {(d, r): n for d, r, n in lookups(tmp_path)}
        # Turned off, it forgets what it cached, and the task no longer names those people.
        config.unlink()
        config = write_config(tmp_path, sb, "salesforce", _fragment())
        out = _cli(config, "sync", "--as-of", AS_OF)
        assert f"outside people-data: {len(found)} cached answers forgotten" in out
        assert lookups(tmp_path) == []
        assert "From outside data" not in tasks("salesforce", sb)[key]
    assert "- Cal Csv, \u201cCFO\u201d, cal@staleedges.com (source: CSV file people.csv)" in body
    assert "- Chi Champ, \u201cVP Operations\u201d (source: CSV file people.csv)" in body
    assert "Never Asked" not in body
    assert found[("staleedges.com", "Economic Buyer")] == 2  # Cal, and Chi (any role)
    assert ("healthyco.com", "Champion") not in found


def test_enrichment_settings_are_checked_and_off_by_default(tmp_path):
    from crmsync.state.errors import ConfigError
    from crmsync.sync import config

    assert not config.from_dict({}, path=tmp_path / "sync.toml").enrichment.enabled
    with pytest.raises(ConfigError, match=r"\[enrichment\] provider = \"csv\" needs csv_path"):
        config.from_dict({"enrichment": {"provider": "csv"}}, path=tmp_path / "sync.toml")
    with pytest.raises(ConfigError, match=r"\[enrichment\] max_calls_per_run"):
        config.from_dict({"enrichment": {"max_calls_per_run": -1}}, path=tmp_path / "sync.toml")


def test_a_provider_that_is_not_installed_leaves_the_crm_suggestions(tmp_path):
    fragment = {**_fragment(), "enrichment": {"provider": "nobody-installed-this"}}
    with sandbox_for("hubspot") as sb:
        config = write_config(tmp_path, sb, "hubspot", fragment)
        _cli(config, "setup")
        _cli(config, "sync", "--full", "--as-of", AS_OF)  # exits 0
        flags = json.loads(_cli(config, "flags", "--format", "json"))
    assert any(f["evidence"].get("successors") for f in flags)
    assert lookups(tmp_path) == []


MOVED_DAY = "2026-10-31"  # the day before AS_OF: everyone moved stays engaged, none goes stale
MOVED = ("Nadia North", "Omar Oak", "Quinn Quill", "Rita Lost", "Rob Won", "Rae Old")


def task_stamps(crm: str, sb: Any) -> dict[str, tuple[str, str]]:
    """crmsync's task key -> (body, when the CRM last modified the task)."""
    if crm == "salesforce":
        return {t["Crmsync_Key__c"]: (t.get("Description") or "", t["SystemModstamp"])
                for t in sb.records("Task") if t.get("Crmsync_Key__c")}  # fmt: skip
    return {t["properties"]["crmsync_key"]: (t["properties"].get("hs_task_body") or "",
                                             t["properties"]["hs_lastmodifieddate"])
            for t in sb.records("tasks") if t["properties"].get("crmsync_key")}  # fmt: skip


def log_activity(crm: str, sb: Any, contact_id: str, day: str) -> None:
    """The person logs an e-mail or a call on `day` (the CRM's own activity field moves)."""
    if crm == "salesforce":
        sb.update("Contact", contact_id, {"LastActivityDate": day})
    else:
        sb.update("contacts", contact_id, {"notes_last_contacted": f"{day}T15:00:00Z"},
                  source="import")  # fmt: skip


@pytest.mark.parametrize("crm", CRMS)
def test_suggested_and_engaged_people_logging_activity_rewrite_no_task(crm, tmp_path):
    """The tasks name who could take a role and who is engaged, not when each was last
    active: a person logging activity changes the evidence, and no task in the CRM."""
    with sandbox_for(crm) as sb:
        config = write_config(tmp_path, sb, crm, _fragment())
        _cli(config, "setup")
        _cli(config, "sync", "--full", "--as-of", AS_OF)
        before = task_stamps(crm, sb)
        i = ids(crm)
        olga = f"departed_champion:{crm}:{i['Succession Ltd']}:{i['Olga Outgoing']}"
        assert before[olga][0] == OLGA_TASK
        for name in MOVED:
            log_activity(crm, sb, i[name], MOVED_DAY)
        _cli(config, "sync", "--full", "--as-of", AS_OF)
        flags = json.loads(_cli(config, "flags", "--format", "json"))
        after = task_stamps(crm, sb)
    assert after == before
    # The mirror saw the moves: the evidence carries the new dates.
    seen = {
        c["contact_id"]: c["last_activity_date"]
        for f in flags
        for s in f["evidence"].get("successors", [])
        for c in s["candidates"]
    } | {
        e["contact_id"]: e["last_activity_date"]
        for f in flags if f["rule"] == "single_threaded_account"
        for e in f["evidence"]["engaged"]
    }  # fmt: skip
    assert {seen[i[name]] for name in MOVED} == {MOVED_DAY}
