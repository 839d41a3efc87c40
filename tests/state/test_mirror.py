"""apply_page: upsert, unchanged, soft delete, history, merges, atomicity, full pulls."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from crmsync.state import cursors, mirror, outbox
from crmsync.state.db import open_db
from crmsync.state.errors import EmptyFullPull
from crmsync.state.model import ObjectType
from tests.state.conftest import load
from tests.state.records import CRM, account, at, contact, opportunity, page, role


def _row(db, table: str, id: str) -> dict:
    return next(db.query(f"SELECT * FROM {table} WHERE crm = ? AND id = ?", [CRM, id]))


def _history(db) -> list[tuple]:
    return db.execute(
        "SELECT contact_id, field, old, new, seen_at FROM contact_history ORDER BY id"
    ).fetchall()


def test_insert_stores_typed_canonical_columns_raw_and_owned(db) -> None:
    rec = contact("C1", owned={"status": "ok"}, last_activity_at=at(-60), email_bounced=True)
    result = load(db, rec)
    assert result.inserted == 1
    row = _row(db, "contacts", "C1")
    assert row["account_id"] == "A1"
    assert row["email_bounced"] == 1
    assert row["last_activity_at"] == "2026-05-01T11:00:00.000000Z"
    assert row["created_at"] == "2025-01-01T00:00:00.000000Z"
    assert row["modified_at"] == "2026-05-01T12:00:00.000000Z"
    assert row["raw"] and '"Id":"C1"' in row["raw"]
    assert row["owned"] == '{"status":"ok"}'
    assert row["deleted_at"] is None
    opp = load(db, opportunity("O1"))
    assert opp.inserted == 1
    assert _row(db, "opportunities", "O1")["close_date"] == "2026-09-30"


def test_identical_record_is_unchanged_and_writes_nothing(db) -> None:
    load(db, contact("C1"), generation=3)
    changes_before = db.conn.total_changes
    result = load(db, contact("C1"), generation=3)
    assert (result.unchanged, result.updated, result.inserted) == (1, 0, 0)
    assert db.conn.total_changes == changes_before
    assert _history(db) == []


def test_update_records_history_for_account_email_and_title(db) -> None:
    load(db, contact("C1", email="ada@acme.test", title="CTO"))
    seen = at(30)
    result = load(
        db,
        contact("C1", account_id="A2", email="ada@beta.test", title="Former CTO", minute=10),
        seen_at=seen,
    )
    assert (result.updated, result.history_rows) == (1, 3)
    assert _history(db) == [
        ("C1", "account_id", "A1", "A2", "2026-05-01T12:30:00.000000Z"),
        ("C1", "email", "ada@acme.test", "ada@beta.test", "2026-05-01T12:30:00.000000Z"),
        ("C1", "title", "CTO", "Former CTO", "2026-05-01T12:30:00.000000Z"),
    ]


def test_email_case_change_is_not_history(db) -> None:
    load(db, contact("C1", email="Ada@Acme.test"))
    result = load(db, contact("C1", email="ada@acme.test", minute=1))
    assert result.updated == 1
    assert result.history_rows == 0


def test_other_field_change_updates_without_history(db) -> None:
    load(db, contact("C1"))
    result = load(db, contact("C1", minute=5, last_activity_at=at(1)))
    assert (result.updated, result.history_rows) == (1, 0)


def test_older_version_never_regresses_a_row(db) -> None:
    load(db, contact("C1", title="VP", minute=10))
    result = load(db, contact("C1", title="Intern", minute=5))
    assert result.skipped == 1
    assert _row(db, "contacts", "C1")["title"] == "VP"


def test_duplicate_ids_in_one_page_keep_the_newest(db) -> None:
    result = load(db, contact("C1", title="new", minute=9), contact("C1", title="old", minute=1))
    assert (result.inserted, result.skipped) == (1, 1)
    assert _row(db, "contacts", "C1")["title"] == "new"


def test_d1_delete_is_soft_and_keeps_the_row(db) -> None:
    load(db, contact("C1"))
    result = load(db, contact("C1", deleted=True, minute=5), seen_at=at(60))
    assert result.deleted == 1
    row = _row(db, "contacts", "C1")
    assert row["deleted_at"] == "2026-05-01T13:00:00.000000Z"
    assert row["first_name"] == "Ada"  # values kept
    again = load(db, contact("C1", deleted=True, minute=5), seen_at=at(90))
    assert again.unchanged == 1
    assert _row(db, "contacts", "C1")["deleted_at"] == "2026-05-01T13:00:00.000000Z"


def test_deleting_a_record_the_mirror_never_held_writes_and_counts_nothing(db) -> None:
    # A record created and deleted between two runs, or a HubSpot buying role the connector
    # retires without knowing whether the contact held it: no tombstone row, no "deleted"
    # count (an unchanged CRM reported thousands of deleted contact roles; issue 10).
    result = load(db, contact("C9", deleted=True))
    assert (result.deleted, result.inserted, result.updated) == (0, 0, 0)
    assert db.conn.execute("SELECT count(*) FROM contacts WHERE id = 'C9'").fetchone()[0] == 0


def test_restored_record_is_undeleted(db) -> None:
    load(db, contact("C1"))
    load(db, contact("C1", deleted=True, minute=5))
    result = load(db, contact("C1", minute=10))
    assert result.updated == 1
    assert _row(db, "contacts", "C1")["deleted_at"] is None


def test_d5_contact_merge_repoints_history_roles_and_tasks(db) -> None:
    load(db, contact("LOSER", title="CTO"), contact("WIN"), opportunity("O1"), role("R1", "LOSER"))
    load(db, contact("LOSER", title="Chief Technology Officer", minute=1))  # a history row
    db.execute(
        "INSERT INTO tasks (crm, id, key, contact_id, account_id) VALUES (?, 'T1', 'k', 'LOSER', 'A1')",
        [CRM],
    )
    result = load(db, contact("LOSER", deleted=True, merged_into="WIN", minute=5))
    assert result.deleted == 1
    loser = _row(db, "contacts", "LOSER")
    assert loser["deleted_at"] is not None and loser["merged_into"] == "WIN"
    assert _row(db, "contact_roles", "R1")["contact_id"] == "WIN"
    assert _row(db, "tasks", "T1")["contact_id"] == "WIN"
    assert {h[0] for h in _history(db)} == {"WIN"}


def test_d4_account_merge_moves_children_without_fake_moves(db) -> None:
    load(
        db,
        account("A1"),
        account("A2", domain="acme.test"),
        contact("C1", account_id="A2"),
        opportunity("O2", account_id="A2"),
    )
    load(db, account("A2", deleted=True, merged_into="A1", minute=5))
    assert _row(db, "contacts", "C1")["account_id"] == "A1"
    assert _row(db, "opportunities", "O2")["account_id"] == "A1"
    # the CRM then reports the contact reparented to the survivor: no history row
    result = load(db, contact("C1", account_id="A1", minute=6))
    assert result.history_rows == 0


def test_page_and_cursor_commit_together_or_not_at_all(db) -> None:
    with pytest.raises(RuntimeError, match="boom"), db.conn:
        mirror.apply_page(db, CRM, page(contact("C1")), generation=0, seen_at=at())
        cursors.save(db, CRM, ObjectType.CONTACT, {"modstamp": "x"})
        raise RuntimeError("boom")
    assert db.execute("SELECT count(*) FROM contacts").fetchone()[0] == 0
    assert cursors.get(db, CRM, ObjectType.CONTACT).cursor is None
    with db.conn:
        mirror.apply_page(db, CRM, page(contact("C1")), generation=0, seen_at=at())
        cursors.save(db, CRM, ObjectType.CONTACT, {"modstamp": "x"})
    assert db.execute("SELECT count(*) FROM contacts").fetchone()[0] == 1
    assert cursors.get(db, CRM, ObjectType.CONTACT).cursor == {"modstamp": "x"}


def test_apply_page_never_commits_by_itself(db_path: Path) -> None:
    writer = open_db(db_path)
    reader = open_db(db_path)
    mirror.apply_page(writer, CRM, page(contact("C1")), generation=0, seen_at=at())
    assert writer.conn.in_transaction
    assert reader.execute("SELECT count(*) FROM contacts").fetchone()[0] == 0
    writer.conn.rollback()
    assert writer.execute("SELECT count(*) FROM contacts").fetchone()[0] == 0
    writer.close()
    reader.close()


def test_failure_mid_page_rolls_back_the_whole_page(db, monkeypatch) -> None:
    load(db, contact("C1"))

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(mirror, "_touch", broken)
    with pytest.raises(OSError), db.conn:
        mirror.apply_page(
            db,
            CRM,
            page(contact("C1", title="changed", minute=3), contact("C2")),
            generation=1,
            seen_at=at(),
        )
    assert _row(db, "contacts", "C1")["title"] == "CTO"
    assert db.execute("SELECT count(*) FROM contacts").fetchone()[0] == 1


def test_full_pull_marks_unseen_rows_deleted(db) -> None:
    load(db, contact("C1"), contact("C2"), contact("C3"))
    with db.conn:
        gen = cursors.begin_full(db, CRM, ObjectType.CONTACT)
    assert gen == 1
    with db.conn:
        result = mirror.apply_page(
            db,
            CRM,
            page(contact("C1"), contact("C2", title="CEO", minute=2)),
            generation=gen,
            seen_at=at(5),
        )
        cursors.save(db, CRM, ObjectType.CONTACT, {"page": 1}, mode="full")
    assert (result.unchanged, result.updated) == (1, 1)
    with db.conn:
        vanished = mirror.finish_full(db, CRM, ObjectType.CONTACT, gen, at(10))
        cursors.save(db, CRM, ObjectType.CONTACT, {"modstamp": "end"})
    assert vanished == 1
    assert _row(db, "contacts", "C3")["deleted_at"] == "2026-05-01T12:10:00.000000Z"
    assert _row(db, "contacts", "C1")["deleted_at"] is None
    state = cursors.get(db, CRM, ObjectType.CONTACT)
    assert (state.mode, state.generation) == ("incremental", 1)


def test_o1_killed_full_pull_resumes_with_same_generation(db_path: Path) -> None:
    db = open_db(db_path)
    load(db, contact("C1"), contact("C2"), contact("C3"))
    with db.conn:
        gen = cursors.begin_full(db, CRM, ObjectType.CONTACT)
    with db.conn:
        mirror.apply_page(db, CRM, page(contact("C1")), generation=gen, seen_at=at())
        cursors.save(db, CRM, ObjectType.CONTACT, {"after": "C1"}, mode="full")
    db.close()  # killed here

    db = open_db(db_path)
    state = cursors.get(db, CRM, ObjectType.CONTACT)
    assert state.full_in_progress and state.cursor == {"after": "C1"}
    with db.conn:
        assert cursors.begin_full(db, CRM, ObjectType.CONTACT) == gen
    assert cursors.get(db, CRM, ObjectType.CONTACT).cursor == {"after": "C1"}
    with db.conn:
        mirror.apply_page(db, CRM, page(contact("C2")), generation=gen, seen_at=at())
        assert mirror.finish_full(db, CRM, ObjectType.CONTACT, gen, at()) == 1  # C3 only
    assert _row(db, "contacts", "C1")["deleted_at"] is None
    with db.conn:
        assert cursors.begin_full(db, CRM, ObjectType.CONTACT) == gen + 1
    db.close()


def test_full_pull_that_saw_nothing_refuses_to_delete_everything(db) -> None:
    load(db, *[contact(f"C{i}") for i in range(mirror.EMPTY_GUARD_ROWS)])
    with db.conn:
        gen = cursors.begin_full(db, CRM, ObjectType.CONTACT)
    with pytest.raises(EmptyFullPull), db.conn:
        mirror.finish_full(db, CRM, ObjectType.CONTACT, gen, at())
    assert _row(db, "contacts", "C1")["deleted_at"] is None
    with db.conn:
        vanished = mirror.finish_full(db, CRM, ObjectType.CONTACT, gen, at(), allow_empty=True)
    assert vanished == mirror.EMPTY_GUARD_ROWS


def test_full_pull_of_an_emptied_small_object_deletes_its_rows(db) -> None:
    load(db, contact("C1"), contact("C2"))
    with db.conn:
        gen = cursors.begin_full(db, CRM, ObjectType.CONTACT)
        assert mirror.finish_full(db, CRM, ObjectType.CONTACT, gen, at()) == 2


def test_finish_full_rejects_a_stale_generation(db) -> None:
    with db.conn:
        gen = cursors.begin_full(db, CRM, ObjectType.CONTACT)
    with pytest.raises(ValueError, match="generation"):
        mirror.finish_full(db, CRM, ObjectType.CONTACT, gen + 1, at())
    db.conn.rollback()


def test_crms_are_separate(db) -> None:
    load(db, contact("C1"), crm="salesforce")
    load(db, contact("C1", title="other"), crm="hubspot")
    assert db.execute("SELECT count(*) FROM contacts").fetchone()[0] == 2


def test_x1_lone_surrogate_is_replaced_not_a_crash(db, caplog) -> None:
    result = load(db, contact("C1", last="Bad\ud800Name"))
    assert result.inserted == 1
    assert _row(db, "contacts", "C1")["last_name"] == "Bad\ufffdName"


def test_unstorable_value_becomes_null_and_logs_ids_only(db, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="state")
    result = load(db, contact("C1", created_at="not a date", email="secret.person@acme.test"))
    assert result.inserted == 1
    assert _row(db, "contacts", "C1")["created_at"] is None
    text = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    assert "C1" in text
    assert "secret.person" not in text and "Lovelace" not in text


def test_sqlite_utils_atomic_also_wraps_page_and_cursor(db) -> None:
    with pytest.raises(RuntimeError), db.atomic():
        mirror.apply_page(db, CRM, page(contact("C1")), generation=0, seen_at=at())
        cursors.save(db, CRM, ObjectType.CONTACT, {"modstamp": "x"})
        raise RuntimeError("killed")
    assert db.execute("SELECT count(*) FROM contacts").fetchone()[0] == 0
    assert cursors.get(db, CRM, ObjectType.CONTACT).cursor is None


def test_state_transaction_helper_commits_and_nests(db) -> None:
    from crmsync.state.db import transaction

    with transaction(db):
        mirror.apply_page(db, CRM, page(contact("C1")), generation=0, seen_at=at())
        with pytest.raises(RuntimeError), transaction(db):  # savepoint
            mirror.apply_page(db, CRM, page(contact("C2")), generation=0, seen_at=at())
            raise RuntimeError("inner")
    assert not db.conn.in_transaction
    ids = [r[0] for r in db.execute("SELECT id FROM contacts").fetchall()]
    assert ids == ["C1"]


@pytest.mark.parametrize("generation", [0, 7])
def test_a_page_costs_one_read_and_batched_writes(db, generation: int) -> None:
    """One SELECT for the page's ids, executemany writes, one touch: never a query per record."""
    n = 200
    load(db, *[contact(f"C{i}") for i in range(n)])  # generation 0
    changed = [contact(f"C{i}", title=f"T{i}", minute=1) for i in range(0, n, 2)]
    same = [contact(f"C{i}") for i in range(1, n, 2)]
    seen: list[str] = []
    db.conn.set_trace_callback(seen.append)  # executemany traces each row it binds
    try:
        with db.conn:
            mirror.apply_page(db, CRM, page(*changed, *same), generation=generation, seen_at=at())
    finally:
        db.conn.set_trace_callback(None)
    selects = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    touches = [s for s in seen if s.lstrip().upper().startswith("UPDATE")]
    assert len(selects) == 1
    assert len(touches) == (1 if generation else 0)
    assert len({s.split("(")[0] for s in seen if s.startswith("INSERT")}) == 2  # rows, history


# ---------------------------------------------------------------- reconcile and company moves


def test_reconcile_soft_deletes_what_the_crm_no_longer_lists(db) -> None:
    load(db, *(contact(f"C{i}") for i in range(3)))
    with db.conn:
        assert mirror.delete_missing(db, CRM, ObjectType.CONTACT, ["C0", "C2"], at(5)) == 1
    assert _row(db, "contacts", "C1")["deleted_at"] is not None
    assert _row(db, "contacts", "C0")["deleted_at"] is None


def test_a_listing_that_lags_writes_keeps_rows_changed_or_written_within_the_lag(db) -> None:
    # HubSpot lists crmsync's tasks through search, which lags writes (P6): a row changed in
    # the CRM (modified_at) or written by crmsync (written_at) at or after `changed_after` may
    # be missing from the listing without being gone. Older rows are deleted as before.
    load(db, contact("C0", minute=0), contact("C1", minute=0), contact("C2", minute=10))
    outbox.record_written(db, CRM, ObjectType.CONTACT, "C1", {"status": "stale"}, written_at=at(12))
    with db.conn:
        n = mirror.delete_missing(db, CRM, ObjectType.CONTACT, [], at(15), changed_after=at(10))
    assert n == 1
    assert _row(db, "contacts", "C0")["deleted_at"] is not None
    assert _row(db, "contacts", "C1")["deleted_at"] is None  # crmsync wrote it 3 minutes ago
    assert _row(db, "contacts", "C2")["deleted_at"] is None  # the CRM changed it 5 minutes ago


def test_an_empty_id_listing_deletes_nothing_when_the_mirror_holds_many_rows(db, caplog) -> None:
    load(db, *(contact(f"C{i:02d}") for i in range(mirror.EMPTY_GUARD_ROWS)))
    with db.conn:
        n = mirror.delete_missing(
            db, CRM, ObjectType.CONTACT, [], at(5), guard=mirror.EMPTY_GUARD_ROWS
        )
    assert n == 0
    assert all(r[0] is None for r in db.execute("SELECT deleted_at FROM contacts"))
    assert "listed no ids" in caplog.text


def test_account_moves_names_contacts_the_crm_links_contradict(db) -> None:
    load(db, account("A1"), account("A2"), account("A3"))
    load(
        db,
        contact("C1", account_id="A1"),
        contact("C2", account_id="A1"),
        contact("C3", account_id="A2"),
        contact("C4", account_id="A3"),
        contact("C5", account_id="GONE"),
    )
    links = [
        ("C1", "A1", True),  # unchanged
        ("C2", "A2", True),
        ("C2", "A1", False),  # primary moved to A2, still linked to A1
        # C3: A2 no longer lists it at all (its company association was removed)
        ("C4", "A3", False),  # still linked, no primary: not contradicted
        ("C9", "A1", True),  # not in the mirror yet: the pulls bring it
    ]
    assert mirror.account_moves(db, CRM, links) == ["C2", "C3"]


def test_role_changes_names_opportunities_whose_roles_the_crm_contradicts(db) -> None:
    load(db, opportunity("O1"), opportunity("O2"), opportunity("O3"))
    load(
        db,
        role("O1:C1:Champion", "C1", "O1"),
        role("O2:C1:Champion", "C1", "O2"),
        role("O3:C1:Champion", "C1", "O3"),
        role("buying_role:C1:CHAMPION", "C1", None),
    )
    current = [
        ("O1", "O1:C1:Champion"),  # unchanged
        ("O2", "O2:C2:Champion"),  # moved to another contact
        # O3: its only label was removed
        ("O9", "O9:C1:Champion"),  # an opportunity the mirror does not hold yet: the pulls
    ]
    assert mirror.role_changes(db, CRM, current) == ["O2", "O3"]
    with db.conn:
        assert mirror.retire_roles(db, CRM, ["O2", "O3"], ["O2:C2:Champion"], at(5)) == 2
    live = [
        r[0]
        for r in db.execute("SELECT id FROM contact_roles WHERE deleted_at IS NULL ORDER BY id")
    ]
    assert live == ["O1:C1:Champion", "buying_role:C1:CHAMPION"]


# ---------------------------------------------------------------- indexes after a first full pull


def _indexes(db, table: str = "contacts") -> set[str]:
    return {
        r[0]
        for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
            [table],
        )
    }


def _first_full_page(db) -> int:
    """A first full pull's start and one committed page, as sync/pull.py does them."""
    with db.conn:
        generation = cursors.begin_full(db, CRM, ObjectType.CONTACT)
        mirror.defer_indexes(db, ObjectType.CONTACT)
    with db.conn:
        mirror.apply_page(db, CRM, page(contact("C1")), generation=generation, seen_at=at())
        cursors.save(db, CRM, ObjectType.CONTACT, {"after": "C1"}, mode="full")
    return generation


def test_first_full_pull_builds_the_indexes_at_its_end(db) -> None:
    indexes = _indexes(db)
    assert indexes  # the migrations make some
    generation = _first_full_page(db)
    assert _indexes(db) == set()  # built once, after the rows
    with db.conn:
        mirror.apply_page(db, CRM, page(contact("C2")), generation=generation, seen_at=at())
        mirror.finish_full(db, CRM, ObjectType.CONTACT, generation, at())
    assert _indexes(db) == indexes
    plan = " ".join(
        r[-1]
        for r in db.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM contacts WHERE crm = ? AND account_id = ?",
            [CRM, "A1"],
        )
    )
    assert "contacts_account" in plan


def test_a_table_with_rows_keeps_its_indexes(db) -> None:
    load(db, contact("C1"))
    indexes = _indexes(db)
    with db.conn:
        cursors.begin_full(db, CRM, ObjectType.CONTACT)
        assert mirror.defer_indexes(db, ObjectType.CONTACT) == []
    assert _indexes(db) == indexes


def test_a_killed_first_full_pull_leaves_indexes_that_come_back(db_path: Path) -> None:
    db = open_db(db_path)
    indexes = _indexes(db)
    generation = _first_full_page(db)
    db.close()  # killed here: the pull is still in progress
    db = open_db(db_path)  # another process meanwhile, or the resumed run: not under its feet
    assert _indexes(db) == set()
    with db.conn:  # the resumed pull's last page
        mirror.apply_page(db, CRM, page(contact("C2")), generation=generation, seen_at=at())
        mirror.finish_full(db, CRM, ObjectType.CONTACT, generation, at())
    assert _indexes(db) == indexes
    db.close()


def test_opening_the_mirror_builds_indexes_no_full_pull_will(db_path: Path) -> None:
    db = open_db(db_path)
    indexes = _indexes(db)
    _first_full_page(db)
    with db.conn:
        cursors.clear(db, CRM)  # the full pull abandoned: nothing would build them
    db.close()
    db = open_db(db_path)
    assert _indexes(db) == indexes
    db.close()
