"""The planner fed by the real rules over a real mirror (state.views + rules.evaluate_account)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from crmsync import rules
from crmsync.state import views
from crmsync.state.model import CrmRecord, ObjectType, WriteKind
from crmsync.sync.plan import format_plan

from .fakes import AS_OF, CRM, pull

OLD = datetime(2025, 1, 10, tzinfo=UTC)
RECENT = datetime(2026, 11, 1, tzinfo=UTC)


def _seed(fake: Any) -> None:
    fake.accounts.clear()
    fake.contacts.clear()
    fake.add_account("001A", "Acme", tier="Strategic", domain="acme-corp.com")
    people = [
        ("003A1", "Ada", "Lovelace", "ada@acme-corp.com", RECENT, False),
        ("003A2", "Alan", "Turing", "alan@acme-corp.com", OLD, False),  # stale
        ("003A3", "Grace", "Hopper", "grace@acme-corp.com", RECENT, True),  # bouncing champion
    ]
    for cid, first, last, email, last_activity, bounced in people:
        fake.add_contact(
            cid,
            "001A",
            first,
            last,
            "Engineer",
            email=email,
            last_activity_at=last_activity,
            created_at=OLD,
            email_bounced=bounced,
            bounce_reason="550 5.1.1 user unknown" if bounced else None,
            bounced_at=RECENT if bounced else None,
        )
    fake.opportunities.append(
        CrmRecord(
            ObjectType.OPPORTUNITY,
            "006A",
            OLD,
            values={
                "account_id": "001A",
                "name": "Acme renewal",
                "stage": "Negotiation",
                "is_closed": False,
                "is_won": False,
                "close_date": date(2027, 1, 15),
            },
        )
    )
    fake.contact_roles.append(
        CrmRecord(
            ObjectType.CONTACT_ROLE,
            "00KA",
            OLD,
            values={
                "opportunity_id": "006A",
                "contact_id": "003A3",
                "role": "Champion",
                "is_primary": True,
            },
        )
    )


def _results(db: Any) -> dict[str, Any]:
    return {
        v.id: rules.evaluate_account(v, rules.RuleSettings(), AS_OF)
        for v in views.iter_account_views(db, CRM)
    }


def test_real_rules_plan_fields_statuses_and_tasks_then_nothing(runner, fake, db, connector):
    _seed(fake)
    pull(db, fake)
    results = _results(db)
    p, report = runner.run(results)
    kinds = sorted(i.kind.value for i in p.items)
    assert "update_account" in kinds and "create_task" in kinds, format_plan(p)
    assert report.rejected == 0 and report.written == len(p.items)
    statuses = {cid: c["owned"].get("status") for cid, c in fake.contacts.items()}
    assert statuses["003A2"] == "stale"
    assert statuses["003A3"] in ("bouncing", "departed")
    assert statuses["003A1"] is None  # never flagged: left blank
    subjects = sorted(t["subject"] for t in fake.tasks.values())
    assert any("Grace Hopper" in s for s in subjects), subjects
    for task in fake.tasks.values():
        for word in ("flag", "rule", "crmsync", "__c"):
            assert word not in task["subject"].lower()
        assert task["priority"] == "high" and task["due_date"] == "2026-11-26"  # strategic
    # W10 with the real rules: unchanged data, second run writes nothing
    calls = connector.write_calls
    second, _ = runner.run(_results(db))
    assert second.empty, format_plan(second)
    assert connector.write_calls == calls


def test_real_rules_reengaged_contact_resolves_and_completes_the_task(runner, fake, db):
    _seed(fake)
    pull(db, fake)
    runner.run(_results(db))
    hygiene = [t for t in fake.tasks.values() if t["key"].startswith("contact_hygiene:")]
    fake.contacts["003A2"]["values"]["last_activity_at"] = datetime(2026, 11, 20, tzinfo=UTC)
    fake.contacts["003A2"]["modified_at"] = fake.stamp()
    pull(db, fake)
    p, _ = runner.run(_results(db))
    assert fake.contacts["003A2"]["owned"]["status"] == "ok"
    if hygiene:  # Alan was the account's only stale/bouncing contact outside a departure
        assert any(i.kind is WriteKind.COMPLETE_TASK for i in p.items), format_plan(p)
        assert hygiene[0]["status"] == "completed"
