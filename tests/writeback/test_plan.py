"""Planning: diff against what the CRM holds, ownership guard, tasks, caps (issue 6)."""

from __future__ import annotations

from typing import Any

import pytest

from crmsync.state import outbox
from crmsync.state.model import CoverageStatus, HygieneStatus, WriteKind
from crmsync.sync import ownership
from crmsync.sync.plan import WritebackSettings, enqueue, format_plan, norm, plan, render_plan

from .fakes import (
    AS_OF,
    CRM,
    Result,
    bouncing,
    coverage,
    departed,
    pull,
    single_threaded,
    stale,
)


def _kinds(p: Any) -> list[str]:
    return sorted(i.kind.value for i in p.items)


def _item(p: Any, kind: WriteKind, target: str | None = None) -> Any:
    found = [i for i in p.items if i.kind is kind and (target is None or i.target_id == target)]
    assert len(found) == 1, found
    return found[0]


def test_account_fields_written_only_where_the_crm_differs(db, fake, settings):
    # crmsync wrote these earlier (signed); the CRM echoes numbers as 4.0 (Salesforce) and
    # "2" (HubSpot): equal to 4 and 2, not rewritten, and still recognised as crmsync's
    fake.wrote("accounts", "001A", stakeholders=4, engaged=2, roles_covered="Champion",
               coverage_score=40)  # fmt: skip
    fake.accounts["001A"]["owned"].update({"stakeholders": 4.0, "engaged": "2"})
    pull(db, fake)
    p = plan(db, CRM, {"001A": Result(coverage=coverage("001A"))}, settings, as_of=AS_OF)
    item = _item(p, WriteKind.UPDATE_ACCOUNT, "001A")
    payload = dict(item.payload)
    signature = payload.pop("signature")
    assert payload == {
        "coverage_score": 55,
        "coverage_status": "amber",
        "hygiene_summary": "4 active contacts, 2 engaged.",
    }
    # the new signature vouches for the values written now and those crmsync still holds
    assert signature == ownership.sign("accounts", {
        "stakeholders": 4, "engaged": 2, "roles_covered": "Champion", **payload,
    })  # fmt: skip
    assert item.old["coverage_score"] == 40
    assert item.key == f"update_account:{CRM}:001A"


def test_never_flagged_contacts_are_left_blank_and_flagged_ones_get_status(db, fake, settings):
    pull(db, fake)
    result = Result(
        coverage=coverage("001A"),
        flags=(stale("001A", "003A2"),),
        contact_status={"003A2": (HygieneStatus.STALE, "No logged activity\nsince 3 March 2026.")},
    )
    p = plan(db, CRM, {"001A": result}, settings, as_of=AS_OF)
    contacts = [i for i in p.items if i.kind is WriteKind.UPDATE_CONTACT]
    written = {"status": "stale", "reason": "No logged activity since 3 March 2026."}
    assert [(i.target_id, dict(i.payload)) for i in contacts] == [
        ("003A2", {**written, "signature": ownership.sign("contacts", written)})
    ]


def test_cleared_contact_is_written_ok(db, fake, settings):
    fake.wrote("contacts", "003A1", status="bouncing", reason="Email bounced.")
    pull(db, fake)
    p = plan(db, CRM, {"001A": Result()}, settings, as_of=AS_OF)
    item = _item(p, WriteKind.UPDATE_CONTACT, "003A1")
    assert dict(item.payload) == {
        "status": "ok", "reason": None, "signature": ownership.sign("contacts", {"status": "ok"}),
    }  # fmt: skip


def test_w10_unchanged_data_plans_nothing(runner, connector):
    results = {"001A": Result(coverage=coverage("001A"), flags=(single_threaded("001A"),))}
    first, report = runner.run(results)
    assert first.items and report.written == len(first.items)
    calls = connector.write_calls
    second, report2 = runner.run(results)
    assert second.empty and not second.conflicts
    assert "nothing to write" in format_plan(second)
    assert connector.write_calls == calls  # W10: zero write calls
    assert report2.calls == 0


def test_w10_plan_before_the_next_pull_also_plans_nothing(runner):
    """The drain reflects landed writes in the mirror, so a plan without a pull is quiet too."""
    results = {
        "001A": Result(
            coverage=coverage("001A"),
            flags=(stale("001A", "003A1"),),
            contact_status={"003A1": (HygieneStatus.STALE, "Quiet.")},
        )
    }
    runner.run(results)
    again = runner.plan(results, pull_first=False)
    assert again.empty, format_plan(again)


def test_w8_human_edit_is_not_overwritten_and_reported(runner, fake):
    results = {"001A": Result(coverage=coverage("001A", score=55))}
    runner.run(results)
    fake.edit("accounts", "001A", coverage_score=90)  # an account manager disagrees
    changed = {"001A": Result(coverage=coverage("001A", score=60, engaged=3))}
    p, _ = runner.run(changed)
    item = _item(p, WriteKind.UPDATE_ACCOUNT, "001A")
    assert "coverage_score" not in item.payload
    assert item.payload["engaged"] == 3  # the fields nobody touched still update
    [conflict] = p.conflicts
    assert (conflict.field, conflict.crm_value, conflict.last_written, conflict.intended) == (
        "coverage_score",
        90,
        55,
        60,
    )
    assert fake.accounts["001A"]["owned"]["coverage_score"] == 90
    assert "conflict" in format_plan(p) and "90" in format_plan(p)
    [drift] = runner.drifts
    assert (drift.record_id, drift.field, drift.crm_value) == ("001A", "coverage_score", 90)


def test_w8_guard_can_be_turned_off(runner, fake):
    runner.run({"001A": Result(coverage=coverage("001A", score=55))})
    fake.edit("accounts", "001A", coverage_score=90)
    runner.settings = WritebackSettings(ownership_guard=False)
    p, _ = runner.run({"001A": Result(coverage=coverage("001A", score=55))})
    assert not p.conflicts and fake.accounts["001A"]["owned"]["coverage_score"] == 55


def test_w8_contact_status_and_reason_are_held_together(runner, fake):
    results = {
        "001A": Result(
            flags=(stale("001A", "003A1"),),
            contact_status={"003A1": (HygieneStatus.STALE, "Quiet.")},
        )
    }
    runner.run(results)
    fake.edit("contacts", "003A1", status="ok")  # a person says: this one is fine
    p = runner.plan(
        {
            "001A": Result(
                flags=(bouncing("001A", "003A1"),),
                contact_status={"003A1": (HygieneStatus.BOUNCING, "Bounced.")},
            )
        }
    )
    assert not [i for i in p.items if i.kind is WriteKind.UPDATE_CONTACT]
    assert [c.field for c in p.conflicts] == ["status"]


def test_departed_champion_task_names_the_account_they_moved_to(db, fake, settings):
    pull(db, fake)
    result = Result(flags=(departed("001A", "003A1", moved_to="Globex"),))
    p = plan(db, CRM, {"001A": result}, settings, as_of=AS_OF)
    task = _item(p, WriteKind.CREATE_TASK)
    assert task.payload["subject"] == "Ada Lovelace has left Acme (now at Globex)"
    assert "Globex" in task.payload["body"]
    assert task.payload["key"] == f"departed_champion:{CRM}:001A:003A1"
    # the outbox key of a create is the task's own key: both connectors stamp it on the task
    assert task.key == task.payload["key"]
    assert task.payload["owner_id"] == "005A"
    assert task.payload["contact_id"] == "003A1"
    assert task.payload["due_date"] == "2026-11-30"  # growth: 7 days
    assert task.payload["priority"] == "normal"


def test_stale_and_bouncing_contacts_share_one_task_per_account(db, fake, settings):
    pull(db, fake)
    result = Result(
        flags=(
            stale("001A", "003A1"),
            stale("001A", "003A3"),
            bouncing("001A", "003A3"),
            bouncing("001A", "003A2"),
        ),
        contact_status={"003A3": (HygieneStatus.BOUNCING, "Email to grace bounced.")},
    )
    p = plan(db, CRM, {"001A": result}, settings, as_of=AS_OF)
    task = _item(p, WriteKind.CREATE_TASK)
    assert task.payload["subject"] == (
        "Tidy up 3 contacts at Acme: 2 bouncing and 1 without recent activity"
    )
    body = task.payload["body"]
    assert body.count("Grace Hopper") == 1  # bouncing wins over stale
    assert "Grace Hopper (VP Engineering): Email to grace bounced." in body
    assert task.payload["key"] == f"contact_hygiene:{CRM}:001A:001A"


def test_tier_sets_due_date_and_priority(db, fake):
    settings = WritebackSettings(due_days={"strategic": 2}, priority={"strategic": "high"})
    assert settings.due_days["growth"] == 7  # the other tiers keep their defaults
    pull(db, fake)
    from crmsync.state.model import Tier

    p = plan(
        db,
        CRM,
        {"001A": Result(flags=(single_threaded("001A"),), tier=Tier.STRATEGIC)},
        settings,
        as_of=AS_OF,
    )
    task = _item(p, WriteKind.CREATE_TASK)
    assert (task.payload["due_date"], task.payload["priority"]) == ("2026-11-25", "high")


def test_task_owner_falls_back_to_default_owner(db, fake):
    fake.add_account("001N", "Nobody's", owner=None)
    pull(db, fake)
    settings = WritebackSettings(default_owner={"salesforce": "005Z"})
    p = plan(db, CRM, {"001N": Result(flags=(single_threaded("001N"),))}, settings, as_of=AS_OF)
    assert _item(p, WriteKind.CREATE_TASK).payload["owner_id"] == "005Z"


def test_task_of_a_deactivated_owner_goes_to_the_default_owner_else_the_busiest_owner(
    db, fake, caplog
):
    import logging

    fake.inactive.add("005A")  # Salesforce refuses tasks for them (INACTIVE_OWNER_OR_USER)
    fake.add_account("001B", "Bee", owner="005B")
    fake.add_account("001C", "Sea", owner="005Z9")  # an owner id the CRM does not know
    pull(db, fake)
    results = {a: Result(flags=(single_threaded(a),)) for a in ("001A", "001B", "001C")}
    settings = WritebackSettings(default_owner={"salesforce": "005Z"})
    p = plan(db, CRM, results, settings, as_of=AS_OF)
    owners = {i.account_id: i.payload["owner_id"] for i in p.items if i.kind is WriteKind.CREATE_TASK}
    assert owners == {"001A": "005Z", "001B": "005B", "001C": "005Z"}
    # without default_owner: the active owner who owns the most accounts, and one warning
    # naming the accounts (issue 11: it was the integration user, without a word)
    with caplog.at_level(logging.WARNING, logger="crmsync.sync.plan"):
        p = plan(db, CRM, results, WritebackSettings(), as_of=AS_OF)
    owners = {i.account_id: i.payload["owner_id"] for i in p.items if i.kind is WriteKind.CREATE_TASK}
    assert owners == {"001A": "005B", "001B": "005B", "001C": "005B"}
    [warning] = [r for r in caplog.records if "default_owner" in r.getMessage()]
    assert warning.account_ids == ["001A", "001C"] and warning.owner_id == "005B"


def test_new_tasks_are_capped_per_owner_and_the_rest_held(db, fake):
    for n in range(4):
        fake.add_account(f"001X{n}", f"Ex {n}", owner="005A")
    fake.add_account("001Y", "Why", owner="005B")
    pull(db, fake)
    settings = WritebackSettings(max_new_tasks_per_owner=2)
    results = {
        aid: Result(flags=(single_threaded(aid),), coverage=coverage(aid))
        for aid in ("001X0", "001X1", "001X2", "001X3", "001Y")
    }
    results["001X3"] = Result(flags=(departed("001X3", "003Q"),))  # most important first
    p = plan(db, CRM, results, settings, as_of=AS_OF)
    # the cap holds only new tasks: every account's fields are still written
    assert len([i for i in p.items if i.kind is WriteKind.UPDATE_ACCOUNT]) == 4
    created = {(i.owner_id, i.account_id) for i in p.items if i.kind is WriteKind.CREATE_TASK}
    assert created == {("005A", "001X3"), ("005A", "001X0"), ("005B", "001Y")}
    assert sorted(h.account_id for h in p.held) == ["001X1", "001X2"]
    assert "held (cap reached)" in format_plan(p)
    by_owner = p.by_owner()
    assert len(by_owner["005A"].held) == 2 and not by_owner["005B"].held
    assert by_owner["005A"].owner_name == "Ana Owner"


def test_open_task_is_updated_not_duplicated_when_its_content_changes(runner, fake):
    runner.run({"001A": Result(flags=(stale("001A", "003A1"),))})
    p, _ = runner.run({"001A": Result(flags=(stale("001A", "003A1"), stale("001A", "003A2")))})
    assert _kinds(p) == ["update_task"]
    [task] = fake.open_tasks()
    assert "Alan Turing" in task["body"] and "2 contacts" in task["subject"]
    assert len(fake.tasks) == 1


def test_task_edited_by_a_person_is_not_overwritten(runner, fake):
    runner.run({"001A": Result(flags=(stale("001A", "003A1"),))})
    [(tid, task)] = fake.tasks.items()
    task["body"] = "Called Ada, she is on leave until January."
    task["modified_at"] = fake.stamp()
    p, _ = runner.run({"001A": Result(flags=(stale("001A", "003A1"), stale("001A", "003A2")))})
    assert fake.tasks[tid]["body"] == "Called Ada, she is on leave until January."
    assert [c.field for c in p.conflicts] == ["body"]
    assert "2 contacts" in fake.tasks[tid]["subject"]  # the untouched subject still updates


def test_resolved_flag_completes_its_task_with_a_line_why(runner, fake):
    runner.run({"001A": Result(flags=(single_threaded("001A"),))})
    p, _ = runner.run({"001A": Result()})
    assert _kinds(p) == ["complete_task"]
    [task] = fake.tasks.values()
    assert task["status"] == "completed"
    assert task["body"].endswith(
        "Closed automatically on 23 November 2026: the account now has enough engaged "
        "contacts and its key roles are covered."
    )
    third, _ = runner.run({"001A": Result()})
    assert third.empty  # a completed task is not touched again


def test_exempted_problem_completes_its_task_saying_so(runner, fake):
    import dataclasses

    runner.run({"001A": Result(flags=(single_threaded("001A"),))})
    exempted = dataclasses.replace(single_threaded("001A"), suppressed=True)
    p, _ = runner.run({"001A": Result(flags=(exempted,))})
    assert _kinds(p) == ["complete_task"]
    assert "marked in the CRM as needing no action" in next(iter(fake.tasks.values()))["body"]


def test_problem_back_after_crmsync_completed_the_task_reopens_it(runner, fake):
    runner.run({"001A": Result(flags=(single_threaded("001A"),))})
    runner.run({"001A": Result()})
    p, _ = runner.run({"001A": Result(flags=(single_threaded("001A"),))})
    assert _kinds(p) == ["update_task"]
    assert len(fake.tasks) == 1 and len(fake.open_tasks()) == 1


def test_task_closed_by_a_person_stays_closed(runner, fake):
    runner.run({"001A": Result(flags=(single_threaded("001A"),))})
    [task] = fake.tasks.values()
    task["status"] = "completed"
    task["modified_at"] = fake.stamp()
    p, _ = runner.run({"001A": Result(flags=(single_threaded("001A"),))})
    assert p.empty and len(fake.tasks) == 1


def test_tasks_of_a_deleted_account_are_completed(runner, fake, db):
    runner.run({"001A": Result(flags=(single_threaded("001A"),))})
    db.conn.execute(
        "UPDATE accounts SET deleted_at = '2026-11-23T12:00:00.000000Z' WHERE id = '001A'"
    )
    db.conn.commit()
    p = runner.plan({}, pull_first=False)
    assert _kinds(p) == ["complete_task"]
    assert "no longer exists" in p.items[0].payload["body"]


def test_accounts_not_evaluated_are_untouched(runner, fake):
    fake.add_account("001B", "Beta", owner="005B")
    runner.run({"001A": Result(flags=(single_threaded("001A"),))})
    runner.run({"001B": Result(coverage=coverage("001B"))})
    assert len(fake.open_tasks()) == 1  # 001A's task is neither completed nor touched


def test_enqueue_is_idempotent_per_key(db, fake, settings):
    pull(db, fake)
    p = plan(
        db,
        CRM,
        {"001A": Result(coverage=coverage("001A"), flags=(single_threaded("001A"),))},
        settings,
        as_of=AS_OF,
    )
    assert enqueue(db, p) == 2
    assert enqueue(db, p) == 0
    assert outbox.depth(db, CRM)["pending"] == 2


def test_render_plan_shows_old_and_new_values_per_owner(db, fake, settings):
    fake.wrote("accounts", "001A", coverage_status="green")
    pull(db, fake)
    p = plan(
        db,
        CRM,
        {
            "001A": Result(
                coverage=coverage("001A", status=CoverageStatus.RED),
                flags=(single_threaded("001A"),),
            )
        },
        settings,
        as_of=AS_OF,
    )
    text = format_plan(p)
    assert "owner Ana Owner (005A):" in text
    assert "coverage_status: green -> red" in text
    assert "create task: Broaden the relationship at Acme: 2 engaged contacts" in text
    from rich.console import Console

    console = Console(record=True, width=160)
    console.print(render_plan(p))
    assert "green -> red" in console.export_text()


@pytest.mark.parametrize(
    ("name", "a", "b"),
    [
        ("stakeholders", 3, 3.0),
        ("stakeholders", 3, "3"),
        ("roles_covered", "Champion; Economic Buyer", "Economic Buyer;Champion"),
        ("priority", "normal", "Medium"),
        ("hygiene_summary", "a\nb", "a\r\nb "),
        ("reason", None, ""),
    ],
)
def test_values_compare_as_the_crm_returns_them(name, a, b):
    assert norm(name, a) == norm(name, b)


def test_settings_validation_names_the_key():
    with pytest.raises(ValueError, match="due_days.gold"):
        WritebackSettings(due_days={"gold": 1}).validate()
    with pytest.raises(ValueError, match="priority.growth"):
        WritebackSettings(priority={"growth": "urgent"}).validate()
    WritebackSettings().validate()


def test_writeback_table_of_sync_toml_is_read_and_checked(tmp_path):
    from crmsync.sync.config import ConfigError, build

    table = {
        "due_days": {"strategic": 2},
        "default_owner": {"hubspot": "77"},
        "max_new_tasks_per_owner": 10,
    }
    wb = build(WritebackSettings, table, "writeback", base=tmp_path, environ={})
    assert wb.due_days == {"strategic": 2, "growth": 7, "maintenance": 14, "none": 10}
    assert (wb.default_owner, wb.max_new_tasks_per_owner, wb.max_attempts) == (
        {"hubspot": "77"},
        10,
        5,
    )
    with pytest.raises(ConfigError, match="did you mean `due_days`"):
        build(WritebackSettings, {"due_day": {}}, "writeback", base=tmp_path, environ={})
    with pytest.raises(ConfigError, match=r"\[writeback\] priority.growth"):
        build(
            WritebackSettings,
            {"priority": {"growth": "urgent"}},
            "writeback",
            base=tmp_path,
            environ={},
        )
