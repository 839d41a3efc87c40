"""sync_flags: open, keep, resolve, re-open, suppressed; list_flags."""

from __future__ import annotations

import pytest

from crmsync.state.flags import list_flags, preview_flags, status_counts, sync_flags
from crmsync.state.model import Flag, Severity
from tests.state.records import at

RULES = {"stale_contact", "single_threaded_account"}


def flag(
    subject: str,
    rule: str = "stale_contact",
    *,
    crm: str = "salesforce",
    account: str = "A1",
    suppressed: bool = False,
    **kw,
) -> Flag:
    return Flag(
        rule=rule,
        crm=crm,
        account_id=account,
        subject_id=subject,
        severity=kw.pop("severity", Severity.LOW),
        explanation=f"about {subject}",
        contact_id=subject,
        suppressed=suppressed,
        evidence={"since": "2026-03-03"},
        **kw,
    )


def _status(db) -> dict[str, str]:
    return {f["subject_id"]: f["status"] for f in list_flags(db)}


def test_flag_life_open_keep_resolve_reopen(db) -> None:
    first = sync_flags(db, "salesforce", [flag("C1"), flag("C2")], seen_at=at(0), rules_run=RULES)
    assert first.counts == {"opened": 2, "kept": 0, "resolved": 0, "suppressed": 0}

    second = sync_flags(
        db, "salesforce", [flag("C1", severity=Severity.HIGH)], seen_at=at(60), rules_run=RULES
    )
    assert (second.kept, second.resolved) == (
        ["stale_contact:salesforce:A1:C1"],
        ["stale_contact:salesforce:A1:C2"],
    )
    c1, c2 = list_flags(db)
    assert c1["status"] == "open" and c1["severity"] == "high"
    assert (c1["first_seen"], c1["last_seen"]) == (at(0), at(60))
    assert c2["status"] == "resolved" and c2["resolved_at"] == at(60)

    third = sync_flags(db, "salesforce", [flag("C1"), flag("C2")], seen_at=at(120), rules_run=RULES)
    assert third.opened == ["stale_contact:salesforce:A1:C2"]
    c2 = list_flags(db)[1]
    assert c2["status"] == "open" and c2["resolved_at"] is None and c2["first_seen"] == at(0)


def test_suppressed_flag_is_kept_as_suppressed_and_resolves_when_gone(db) -> None:
    changes = sync_flags(
        db, "salesforce", [flag("C1", suppressed=True)], seen_at=at(), rules_run=RULES
    )
    assert changes.counts["suppressed"] == 1 and _status(db) == {"C1": "suppressed"}
    changes = sync_flags(db, "salesforce", [flag("C1")], seen_at=at(1), rules_run=RULES)
    assert changes.opened == ["stale_contact:salesforce:A1:C1"] and _status(db) == {"C1": "open"}
    sync_flags(db, "salesforce", [flag("C1", suppressed=True)], seen_at=at(2), rules_run=RULES)
    changes = sync_flags(db, "salesforce", [], seen_at=at(3), rules_run=RULES)
    assert changes.resolved == ["stale_contact:salesforce:A1:C1"]


def test_only_rules_that_ran_and_their_crm_resolve(db) -> None:
    sync_flags(
        db,
        "salesforce",
        [flag("C1"), flag("A1", "single_threaded_account")],
        seen_at=at(),
        rules_run=RULES,
    )
    sync_flags(db, "hubspot", [flag("C1", crm="hubspot")], seen_at=at(), rules_run=RULES)
    changes = sync_flags(db, "salesforce", [], seen_at=at(1), rules_run={"stale_contact"})
    assert changes.resolved == ["stale_contact:salesforce:A1:C1"]
    assert {(f["crm"], f["rule"], f["status"]) for f in list_flags(db)} == {
        ("salesforce", "stale_contact", "resolved"),
        ("salesforce", "single_threaded_account", "open"),
        ("hubspot", "stale_contact", "open"),
    }


def test_list_flags_filters_and_parses_evidence(db) -> None:
    sync_flags(
        db,
        "salesforce",
        [flag("C2", account="A2"), flag("C1"), flag("A1", "single_threaded_account")],
        seen_at=at(),
        rules_run=RULES,
    )
    got = list_flags(db)
    assert [(f["account_id"], f["rule"], f["subject_id"]) for f in got] == [
        ("A1", "single_threaded_account", "A1"),
        ("A1", "stale_contact", "C1"),
        ("A2", "stale_contact", "C2"),
    ]
    assert got[1]["evidence"] == {"since": "2026-03-03"}
    assert [f["subject_id"] for f in list_flags(db, rule="stale_contact", account_id="A2")] == [
        "C2"
    ]
    assert list_flags(db, status="resolved") == []
    assert list_flags(db, crm="hubspot") == []
    assert status_counts(db) == {
        "single_threaded_account": {"open": 1},
        "stale_contact": {"open": 2},
    }


def test_flag_of_another_crm_is_a_bug(db) -> None:
    with pytest.raises(ValueError, match="hubspot"):
        sync_flags(db, "salesforce", [flag("C1", crm="hubspot")], seen_at=at(), rules_run=RULES)


def test_preview_says_what_sync_would_change_and_changes_nothing(db) -> None:
    sync_flags(db, "salesforce", [flag("C1"), flag("C2")], seen_at=at(0), rules_run=RULES)
    before = list_flags(db)
    incoming = [flag("C1"), flag("C3")]

    preview = preview_flags(db, "salesforce", incoming, rules_run=RULES)

    assert list_flags(db) == before
    stored = sync_flags(db, "salesforce", incoming, seen_at=at(60), rules_run=RULES)
    assert preview.counts == stored.counts == {"opened": 1, "kept": 1, "resolved": 1, "suppressed": 0}
    assert (preview.opened, preview.kept, preview.resolved) == (
        stored.opened, stored.kept, stored.resolved
    )


def test_unchanged_flag_is_not_written_yet_reads_as_seen_again(db) -> None:
    sync_flags(db, "salesforce", [flag("C1"), flag("C2")], seen_at=at(0), rules_run=RULES)
    raw = db.conn.execute("SELECT * FROM flags ORDER BY key").fetchall()
    again = sync_flags(db, "salesforce", [flag("C1"), flag("C2")], seen_at=at(60), rules_run=RULES)
    assert again.counts["kept"] == 2 and again.written == 0
    assert db.conn.execute("SELECT * FROM flags ORDER BY key").fetchall() == raw
    assert {(f["first_seen"], f["last_seen"]) for f in list_flags(db)} == {(at(0), at(60))}
    # resolved later: last seen by the run before (the one at 60), as when it was rewritten
    gone = sync_flags(db, "salesforce", [flag("C1")], seen_at=at(120), rules_run=RULES)
    assert gone.resolved == ["stale_contact:salesforce:A1:C2"] and gone.written == 1
    c1, c2 = list_flags(db)
    assert (c1["last_seen"], c2["last_seen"], c2["resolved_at"]) == (at(120), at(60), at(120))


def test_flag_rules_filled_from_an_older_mirror(db) -> None:
    """m007: a mirror whose flags were all rewritten each run learns each rule's last run."""
    from crmsync.state.db import encode_datetime
    from crmsync.state.migrations import apply_migrations

    sync_flags(db, "salesforce", [flag("C1"), flag("C2")], seen_at=at(0), rules_run=RULES)
    sync_flags(db, "salesforce", [flag("C1", severity=Severity.HIGH)], seen_at=at(60),
               rules_run=RULES)  # fmt: skip
    before = list_flags(db)
    db.execute("DROP TABLE flag_rules")
    db.execute("DELETE FROM _migrations WHERE name = 'm007_flag_rules_seen'")
    db.conn.commit()
    assert apply_migrations(db) == ["m007_flag_rules_seen"]
    assert db.execute("SELECT crm, rule, seen_at FROM flag_rules").fetchall() == [
        ("salesforce", "stale_contact", encode_datetime(at(60)))
    ]
    assert list_flags(db) == before
