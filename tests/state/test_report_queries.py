"""What the leader report reads from the mirror: CRM facts, evaluated runs, flag lifetimes."""

from __future__ import annotations

from crmsync.state import crm_info, runs
from crmsync.state import flags as flag_store
from crmsync.state.model import Flag, Severity
from tests.state.records import at


def test_crm_facts_are_kept_per_crm_and_empty_values_change_nothing(db) -> None:
    assert crm_info.remember(db, "hubspot", {"portal_id": "123", "ui_domain": ""}, at=at()) == 1
    assert crm_info.remember(db, "hubspot", {"portal_id": "123"}, at=at(1)) == 0
    assert crm_info.remember(db, "hubspot", {"portal_id": None}, at=at(2)) == 0
    crm_info.remember(db, "salesforce", {"instance_url": "https://acme.my.salesforce.com"}, at=at())
    assert crm_info.known(db, "hubspot") == {"portal_id": "123"}
    assert crm_info.remember(db, "hubspot", {"portal_id": "456"}, at=at(3)) == 1
    assert crm_info.every(db) == {
        "hubspot": {"portal_id": "456"},
        "salesforce": {"instance_url": "https://acme.my.salesforce.com"},
    }


def test_runs_keep_the_as_of_time_their_rules_ran_at(db) -> None:
    pulled = runs.start(db, "hubspot", "incremental", at(0))
    runs.finish(db, pulled, "ok", at(1), counts={"pull": {}})  # --pull-only: no evaluation
    first = runs.start(db, "hubspot", "full", at(10))
    runs.finish(db, first, "ok", at(11), counts={"coverage": {"green": 2}, "flags": {"x": 1}},
                as_of=at(-60 * 24))  # fmt: skip
    second = runs.start(db, "hubspot", "incremental", at(20))
    runs.finish(db, second, "partial", at(21), counts={"coverage": {"amber": 1}}, as_of=at(20))
    runs.start(db, "hubspot", "incremental", at(30))  # still running: not an evaluation yet
    history = runs.evaluated(db)
    assert [r["id"] for r in history] == [first, second]  # oldest first
    assert history[0]["as_of"] == at(-60 * 24) and history[0]["coverage"] == {"green": 2}
    assert runs.last_evaluation(db, "hubspot") == {
        "id": second, "crm": "hubspot", "started_at": at(20), "as_of": at(20),
    }  # fmt: skip
    assert runs.last_evaluation(db, "salesforce") is None
    assert runs.last_runs(db, 1)[0]["as_of"] is None


def test_flag_history_has_open_and_resolved_flags_with_their_times(db) -> None:
    def flag(subject: str, **kw) -> Flag:
        return Flag("stale_contact", "hubspot", "A1", subject, Severity.LOW, "x", subject, **kw)

    rules = {"stale_contact"}
    flag_store.sync_flags(db, "hubspot", [flag("c1"), flag("c2"), flag("c3", suppressed=True)],
                          seen_at=at(0), rules_run=rules)  # fmt: skip
    flag_store.sync_flags(db, "hubspot", [flag("c2"), flag("c3", suppressed=True)],
                          seen_at=at(10), rules_run=rules)  # fmt: skip
    history = [(h["first_seen"], h["resolved_at"]) for h in flag_store.history(db)]
    assert history == [(at(0), at(10)), (at(0), None)]  # c1 resolved at 10, c2 open; not c3
