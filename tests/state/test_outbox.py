"""Outbox: dedupe by key, claim/mark transitions, dead letters, crash recovery, written values."""

from __future__ import annotations

from crmsync.state import outbox
from crmsync.state.model import ObjectType, Write, WriteKind, WriteResult
from crmsync.state.writeback import is_closed
from tests.state.records import at

SF = "salesforce"


def _enqueue(
    db,
    key: str = "task:k1",
    payload: dict | None = None,
    kind=WriteKind.CREATE_TASK,
    target: str | None = None,
):
    return outbox.enqueue(db, SF, kind, key, target, payload or {"subject": "Call Ada"}, now=at())


def _statuses(db) -> dict[str, str]:
    return {row["key"]: row["status"] for row in outbox.list_items(db)}


def test_same_write_is_never_queued_twice(db) -> None:
    first = _enqueue(db)
    assert first is not None
    assert _enqueue(db) is None
    assert outbox.depth(db)["pending"] == 1
    # a changed payload updates the queued row instead of adding one
    assert _enqueue(db, payload={"subject": "Call Ada today"}) == first
    items = outbox.list_items(db)
    assert len(items) == 1 and items[0]["payload"] == {"subject": "Call Ada today"}


def test_unique_index_backs_the_rule(db) -> None:
    _enqueue(db)
    import sqlite3

    import pytest

    with pytest.raises(sqlite3.IntegrityError):
        db.execute(
            "INSERT INTO outbox (crm, kind, key, payload, created_at, updated_at)"
            " VALUES ('salesforce', 'create_task', 'task:k1', '{}', 'x', 'x')"
        )


def test_claim_marks_inflight_and_mark_transitions(db) -> None:
    a = _enqueue(db, "k:a")
    b = _enqueue(db, "k:b")
    c = _enqueue(db, "k:c")
    claimed = outbox.claim(db, SF, 10, now=at(1))
    assert [i.id for i in claimed] == [a, b, c]
    assert all(i.attempts == 0 for i in claimed)  # the count so far: it grows when the CRM answers
    assert outbox.claim(db, SF, 10) == []  # inflight rows are not claimed twice
    tally = outbox.mark(
        db,
        [
            WriteResult(a, ok=True, crm_id="00T1"),
            WriteResult(b, ok=False, code="UNABLE_TO_LOCK_ROW", detail="locked", retryable=True),
            WriteResult(c, ok=False, code="FIELD_CUSTOM_VALIDATION_EXCEPTION", detail="no"),
        ],
        max_attempts=3,
        now=at(2),
    )
    assert tally == {"done": 1, "failed": 1, "dead": 1, "unknown": 0}
    rows = {r["key"]: r for r in outbox.list_items(db)}
    assert rows["k:a"]["status"] == "done" and rows["k:a"]["crm_id"] == "00T1"
    assert rows["k:a"]["done_at"] == at(2)
    assert (
        rows["k:b"]["status"] == "failed" and rows["k:b"]["last_error_code"] == "UNABLE_TO_LOCK_ROW"
    )
    assert rows["k:c"]["status"] == "dead" and rows["k:c"]["last_error"] == "no"
    assert outbox.depth(db) == {"pending": 0, "inflight": 0, "done": 1, "failed": 1, "dead": 1}
    assert [i.key for i in outbox.claim(db, SF, 10, retry_failed=False)] == []
    assert [i.key for i in outbox.claim(db, SF, 10)] == ["k:b"]


def test_w1_a_transient_refusal_is_never_dead_on_its_own_only_after_max_attempts_runs(db) -> None:
    item_id = _enqueue(db)
    lock_error = WriteResult(item_id, ok=False, code="UNABLE_TO_LOCK_ROW", retryable=True)
    for attempt in (1, 2, 3):  # one run each: a send, the lock, the run's end
        (item,) = outbox.claim(db, SF, 5)
        assert item.attempts == attempt - 1
        outbox.mark(db, [lock_error], max_attempts=3)
        assert _statuses(db) == {"task:k1": "failed"}, "mark never gives a transient refusal up"
        assert outbox.give_up(db, [item_id], max_attempts=3) == ([item_id] if attempt == 3 else [])
    assert _statuses(db) == {"task:k1": "dead"}
    assert outbox.claim(db, SF, 5) == []


def test_a_retry_within_the_same_run_adds_no_attempt(db) -> None:
    item_id = _enqueue(db)
    lock_error = WriteResult(item_id, ok=False, code="UNABLE_TO_LOCK_ROW", retryable=True)
    outbox.claim(db, SF, 5)
    outbox.mark(db, [lock_error], max_attempts=3)
    outbox.claim(db, SF, 5, ids=[item_id])
    outbox.mark(db, [WriteResult(item_id, ok=True)], max_attempts=3, counted={item_id})
    [row] = outbox.list_items(db)
    assert (row["status"], row["attempts"]) == ("done", 1)


def test_dead_row_is_not_requeued_by_the_same_plan_but_by_a_new_payload(db) -> None:
    item_id = _enqueue(db)
    outbox.claim(db, SF, 5)
    outbox.mark(db, [WriteResult(item_id, ok=False, code="INVALID_FIELD")], max_attempts=3)
    assert _enqueue(db) is None and _statuses(db) == {"task:k1": "dead"}
    assert _enqueue(db, payload={"subject": "fixed"}) == item_id
    assert _statuses(db) == {"task:k1": "pending"}
    assert outbox.list_items(db)[0]["attempts"] == 0


def test_requeue_dead_after_admin_fix(db) -> None:
    item_id = _enqueue(db)
    outbox.claim(db, SF, 5)
    outbox.mark(db, [WriteResult(item_id, ok=False, code="INVALID_FIELD")], max_attempts=3)
    assert outbox.requeue_dead(db, SF) == 1
    assert [i.id for i in outbox.claim(db, SF, 5)] == [item_id]


def test_done_key_can_be_queued_again(db) -> None:
    first = _enqueue(db)
    outbox.claim(db, SF, 5)
    outbox.mark(db, [WriteResult(first, ok=True, crm_id="T1")], max_attempts=3)
    second = _enqueue(db, payload={"subject": "again"})
    assert second is not None and second != first


def test_w5_inflight_after_crash_is_reported_then_resolved(db) -> None:
    a = _enqueue(db, "k:a")
    b = _enqueue(db, "k:b")
    outbox.claim(db, SF, 10)
    # the process dies here; the next run finds both inflight, outcome unknown
    unknown = outbox.inflight_unknown(db, SF)
    assert [(i.id, i.key) for i in unknown] == [(a, "k:a"), (b, "k:b")]
    assert _enqueue(db, "k:a", payload={"subject": "new"}) is None  # the writer owns it
    # the writer finds k:a's task in the CRM, k:b's not
    outbox.mark(db, [WriteResult(a, ok=True, crm_id="T9")], max_attempts=3)
    assert outbox.release(db, [b]) == 1
    assert _statuses(db) == {"k:a": "done", "k:b": "pending"}
    assert [i.key for i in outbox.claim(db, SF, 10)] == ["k:b"]


def test_answer_for_a_row_not_inflight_is_ignored(db) -> None:
    item_id = _enqueue(db)
    tally = outbox.mark(
        db, [WriteResult(item_id, ok=True), WriteResult(999, ok=True)], max_attempts=3
    )
    assert tally["unknown"] == 2 and _statuses(db) == {"task:k1": "pending"}


def test_w8_written_values_are_recorded_on_success(db) -> None:
    item_id = outbox.enqueue(
        db,
        SF,
        WriteKind.UPDATE_ACCOUNT,
        "acct:A1",
        "A1",
        {"coverage_score": 42, "coverage_status": "amber"},
        now=at(),
    )
    outbox.claim(db, SF, 5)
    outbox.mark(db, [WriteResult(item_id, ok=True, crm_id="A1")], max_attempts=3)
    assert outbox.written(db, SF, ObjectType.ACCOUNT) == {
        "A1": {"coverage_score": 42, "coverage_status": "amber"}
    }
    outbox.record_written(db, SF, "contacts", "C1", {"status": "stale"}, written_at=at())
    assert outbox.written(db, SF, "contacts", ids=["C1", "C2"]) == {"C1": {"status": "stale"}}
    # the planner's view of the same record: its values read when looked into
    last = outbox.LastWrites(db, SF, "contacts", ["C1", "C2"])
    assert "C2" not in last and last.get("C2", {}) == {} and list(last) == ["C1"]
    record = last["C1"]
    outbox.record_written(db, SF, "contacts", "C1", {"reason": "Quiet."}, written_at=at())
    assert dict(record) == {"status": "stale", "reason": "Quiet."}


def test_enqueue_many_in_one_call(db) -> None:
    writes = [
        Write(WriteKind.UPDATE_CONTACT, f"contact:C{i}", f"C{i}", {"status": "ok"}) for i in range(5)
    ]
    ids = outbox.enqueue_many(db, SF, writes + writes[:1])
    assert len({i for i in ids if i}) == 5 and ids[-1] is None
    assert outbox.depth(db, SF)["pending"] == 5


def test_attempts_count_only_what_reached_the_crm(db) -> None:
    sent, unsent, released = _enqueue(db, "k:sent"), _enqueue(db, "k:unsent"), _enqueue(db, "k:rel")
    claimed = outbox.claim(db, SF, 10)
    assert [i.attempts for i in claimed] == [0, 0, 0]
    outbox.mark(
        db,
        [
            WriteResult(sent, ok=False, code="UNABLE_TO_LOCK_ROW", retryable=True),
            WriteResult(unsent, ok=False, code="UNMAPPED_FIELD", sent=False),
        ],
        max_attempts=3,
    )
    outbox.release(db, [released])  # the CRM was unreachable: never sent
    rows = {r["key"]: (r["status"], r["attempts"]) for r in outbox.list_items(db)}
    assert rows == {"k:sent": ("failed", 1), "k:unsent": ("dead", 0), "k:rel": ("pending", 0)}


def test_requeue_by_code_clears_the_error_and_the_attempts(db) -> None:
    a, b, c = _enqueue(db, "k:a"), _enqueue(db, "k:b"), _enqueue(db, "k:c")
    outbox.claim(db, SF, 10)
    outbox.mark(
        db,
        [
            WriteResult(a, ok=False, code="INVALID_FIELD", detail="No such column 'X__c'"),
            WriteResult(b, ok=False, code="INVALID_FIELD", detail="No such column 'Y__c'"),
            WriteResult(c, ok=False, code="FIELD_CUSTOM_VALIDATION_EXCEPTION", detail="locked"),
        ],
        max_attempts=3,
    )
    (invalid, locked) = outbox.rejected_summary(db)
    assert (invalid.code, invalid.rows, invalid.messages, invalid.attempts) == ("INVALID_FIELD", 2, 2, (1, 1))
    assert (locked.code, locked.rows, locked.message) == ("FIELD_CUSTOM_VALIDATION_EXCEPTION", 1, "locked")
    assert outbox.dead_keys(db, SF, ["k:a", "k:c", "k:other"]) == {"k:a", "k:c"}

    assert outbox.requeue(db, crm=SF, codes=["INVALID_FIELD"]) == 2
    rows = {r["key"]: r for r in outbox.list_items(db)}
    assert rows["k:a"]["status"] == "pending" and rows["k:a"]["attempts"] == 0
    assert rows["k:a"]["last_error_code"] is None and rows["k:c"]["status"] == "dead"
    assert [r["key"] for r in outbox.list_items(db, ("dead", "failed"))] == ["k:c"]
    assert outbox.requeue(db, crm="hubspot") == 0  # another CRM's rows only


def test_record_results_marks_each_answer_and_puts_the_created_task_in_the_mirror(db) -> None:
    created = _enqueue(db, "departed_champion:salesforce:001A:003A",
                       {"key": "departed_champion:salesforce:001A:003A", "subject": "Call Ada",
                        "status": "open", "account_id": "001A"})  # fmt: skip
    refused = _enqueue(db, "update_contact:salesforce:003B", {"status": "stale"},
                       kind=WriteKind.UPDATE_CONTACT, target="003B")  # fmt: skip
    silent = _enqueue(db, "update_contact:salesforce:003C", {"status": "stale"},
                      kind=WriteKind.UPDATE_CONTACT, target="003C")  # fmt: skip
    batch = outbox.claim(db, SF, 10, now=at())
    recorded = outbox.record_results(
        db,
        batch,
        [
            WriteResult(created, ok=True, crm_id="00T1"),
            WriteResult(refused, ok=False, code="INVALID_FIELD", detail="no such field"),
        ],  # the connector gave no answer for `silent`
        max_attempts=5,
        now=at(),
    )
    assert [i.id for i in recorded.landed] == [created]
    assert [(r.item_id, r.code, r.status) for r in recorded.rejections] == [
        (refused, "INVALID_FIELD", "dead"),
        (silent, "NO_RESULT", "failed"),  # refused for a moment: sent again, not lost
    ]
    assert _statuses(db) == {
        "departed_champion:salesforce:001A:003A": "done",
        "update_contact:salesforce:003B": "dead",
        "update_contact:salesforce:003C": "failed",
    }
    row = db.conn.execute(
        "SELECT id, key, subject, is_closed FROM tasks WHERE crm = ?", [SF]
    ).fetchone()
    assert row == ("00T1", "departed_champion:salesforce:001A:003A", "Call Ada", 0)


def test_a_task_is_closed_by_the_crm_flag_or_else_by_its_status() -> None:
    assert [is_closed(s) for s in ("completed", "Complete ", "open", "Not Started", None)] == [
        True, True, False, False, False
    ]  # fmt: skip
    assert is_closed("open", 1) is True and is_closed("completed", 0) is False
