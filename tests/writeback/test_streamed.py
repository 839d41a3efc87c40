"""evaluate -> flags -> plan streamed in chunks of accounts gives what all at once gives.

The mirror holds a generated org (sandbox/generate, seed 7), loaded through the
Salesforce connector's field map as a pull would store it. The reference is the
all-at-once path: every result kept (one chunk), then `plan()` over all of them.
The streamed planner takes what the CRM holds from the views the rules just read
(nothing read twice); `plan()` reads those views again from the mirror.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crmsync import rules
from crmsync.connectors.salesforce.client import Settings
from crmsync.connectors.salesforce.fields import SOBJECTS, FieldInfo, object_maps
from crmsync.sandbox.generate import DEFAULT_AS_OF, iter_records
from crmsync.state import cursors, mirror, outbox
from crmsync.state.db import encode_datetime, open_db, rolled_back
from crmsync.state.flags import list_flags
from crmsync.state.model import ObjectType, Page, WriteKind, WriteResult
from crmsync.sync.evaluate import evaluate, evaluate_and_plan
from crmsync.sync.plan import Plan, Planner, enqueue, plan
from crmsync.sync.writeback_settings import WritebackSettings

CRM = "salesforce"
SETTINGS = WritebackSettings(max_new_tasks_per_owner=5)  # the cap matters: creates are ranked
AS_OF = DEFAULT_AS_OF
LATER = AS_OF + timedelta(days=120)


def held_by_failures(db: Any, kept: Plan) -> list[Any]:
    """The kept plan's writes a dead outbox row with the same key holds back (the oracle)."""
    dead = outbox.dead_keys(db, kept.crm, [i.key for i in kept.items])
    return [i for i in kept.items if i.key in dead]


def _load(path: Path) -> None:
    maps = object_maps(Settings(renewal_date_field="Renewal_Date__c"))
    resolved = {
        SOBJECTS[o]: m.resolve({n.lower(): FieldInfo(n, "string") for n in m.wanted()})
        for o, m in maps.items()
    }
    by_object: dict[ObjectType, list[Any]] = {}
    for _crm, sobject, raw in iter_records(seed=7, accounts=40, crms=(CRM,)):
        res = resolved[sobject]
        if res.map.object is not ObjectType.TASK:
            by_object.setdefault(res.map.object, []).append(res.to_record(raw)[0])
    db = open_db(path)
    for obj, records in by_object.items():
        with db.conn:
            generation = cursors.begin_full(db, CRM, obj)
            mirror.apply_page(db, CRM, Page(obj, records, {}, done=True), generation=generation,
                              seen_at=AS_OF)  # fmt: skip
            mirror.finish_full(db, CRM, obj, generation, AS_OF)
    db.close()


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("org") / "mirror.db"
    _load(path)
    return path


def _copy(src: Path, dst: Path) -> Any:
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    a.close()
    b.close()
    return open_db(dst)


def _rows(db: Any, table: str) -> list[tuple[Any, ...]]:
    return db.conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()


def _all_at_once(db: Any, as_of: datetime, seen_at: datetime) -> tuple[Any, Any]:
    ev = evaluate(db, CRM, rules.RuleSettings(), as_of=as_of, seen_at=seen_at, chunk_size=10**9)
    return ev, plan(db, CRM, ev.results, SETTINGS, as_of=as_of)


def _streamed(db: Any, as_of: datetime, seen_at: datetime, chunk: int) -> tuple[Any, Any]:
    return evaluate_and_plan(db, CRM, rules.RuleSettings(), SETTINGS, as_of=as_of,
                             seen_at=seen_at, chunk_size=chunk)  # fmt: skip


def _delete_account(db: Any) -> None:
    """An account (with flags) deleted in the CRM between runs: its flags resolve."""
    aid = db.conn.execute(
        "SELECT account_id FROM flags ORDER BY account_id LIMIT 1 OFFSET 3"
    ).fetchone()[0]
    with db.conn:
        db.conn.execute("UPDATE accounts SET deleted_at = ? WHERE id = ?", [encode_datetime(AS_OF), aid])


def _same(a: tuple[Any, Any], b: tuple[Any, Any]) -> None:
    (ev_a, plan_a), (ev_b, plan_b) = a, b
    assert (ev_a.accounts, ev_a.by_rule, ev_a.coverage_counts(), ev_a.changes.counts) == (
        ev_b.accounts, ev_b.by_rule, ev_b.coverage_counts(), ev_b.changes.counts
    )  # fmt: skip
    assert plan_a == plan_b


@pytest.mark.parametrize("chunk", [1, 7, 500])
def test_chunked_flags_and_plan_are_the_all_at_once_ones(org: Path, tmp_path: Path, chunk: int) -> None:
    ref = _copy(org, tmp_path / "ref.db")
    got = _copy(org, tmp_path / "got.db")
    t1, t2 = AS_OF, AS_OF + timedelta(hours=6)
    first = _all_at_once(ref, AS_OF, t1)
    assert first[0].changes.counts["opened"] > 50 and first[1].items  # the org has findings
    _same(first, _streamed(got, AS_OF, t1, chunk))
    assert _rows(got, "flags") == _rows(ref, "flags")
    # Later: contacts went stale, an account was deleted (its flags resolve), the rest stay.
    for db in (ref, got):
        _delete_account(db)
    second = _all_at_once(ref, LATER, t2)
    assert second[0].changes.counts["resolved"] > 0 and second[0].changes.counts["kept"] > 0
    _same(second, _streamed(got, LATER, t2, chunk))
    assert _rows(got, "flags") == _rows(ref, "flags")
    assert list_flags(got) == list_flags(ref)


def test_a_flag_found_again_unchanged_is_not_rewritten(org: Path, tmp_path: Path) -> None:
    db = _copy(org, tmp_path / "m.db")
    t1, t2 = AS_OF, AS_OF + timedelta(hours=1)
    ev1, _ = _streamed(db, AS_OF, t1, 7)
    stored = _rows(db, "flags")
    assert ev1.changes.written == len(stored) > 50
    ev2, _ = _streamed(db, AS_OF, t2, 7)  # same data, same as_of, a later run
    assert ev2.changes.counts == {"opened": 0, "kept": len(stored), "resolved": 0, "suppressed": 0}
    assert ev2.changes.written == 0
    assert _rows(db, "flags") == stored  # every row as it was: first_seen, last_seen, content
    assert _rows(db, "flag_rules") == [(CRM, r, encode_datetime(t2)) for r in sorted(rules.RULE_NAMES)]
    # what a reader sees: found again at t2, first seen at t1
    listed = list_flags(db)
    assert {(f["first_seen"], f["last_seen"]) for f in listed} == {(t1, t2)}


def test_a_preview_streams_the_same_plan_and_stores_nothing(org: Path, tmp_path: Path) -> None:
    db = _copy(org, tmp_path / "m.db")
    ref = _copy(org, tmp_path / "ref.db")
    _streamed(db, AS_OF, AS_OF, 7)
    _all_at_once(ref, AS_OF, AS_OF)
    for d in (db, ref):
        _delete_account(d)
    flags, stamps = _rows(db, "flags"), _rows(db, "flag_rules")
    with rolled_back(db):
        previewed = evaluate_and_plan(db, CRM, rules.RuleSettings(), SETTINGS, as_of=LATER,
                                      seen_at=LATER, store=False, chunk_size=7)  # fmt: skip
    assert (_rows(db, "flags"), _rows(db, "flag_rules")) == (flags, stamps)
    _same(previewed, _all_at_once(ref, LATER, LATER))


# ---------------------------------------------------------------- the plan streamed into the outbox


def _outbox(db: Any) -> list[tuple[Any, ...]]:
    return db.conn.execute(
        "SELECT kind, key, target_id, payload, status FROM outbox ORDER BY key"
    ).fetchall()


def _queued(db: Any, as_of: datetime, seen_at: datetime, chunk: int) -> tuple[Any, Any]:
    return evaluate_and_plan(db, CRM, rules.RuleSettings(), SETTINGS, as_of=as_of,
                             seen_at=seen_at, queue=True, chunk_size=chunk)  # fmt: skip


def _reference(db: Any, as_of: datetime, seen_at: datetime) -> tuple[Any, Any]:
    """Today's all-at-once run: every result kept, one Plan, then `enqueue`."""
    ev, p = _all_at_once(db, as_of, seen_at)
    enqueue(db, p)
    return ev, p


def _drain(db: Any, refuse: int = 0) -> None:
    """The CRM takes every queued write (a create gets an id from its key), but refuses the
    first `refuse` contact updates for good: their rows die."""
    ids = outbox.ready_ids(db, CRM)
    items = outbox.claim(db, CRM, len(ids), ids=ids, now=AS_OF)
    refused = [i.id for i in items if i.kind is WriteKind.UPDATE_CONTACT][:refuse]
    results = [
        WriteResult(i.id, ok=False, code="INVALID_FIELD", detail="refused")
        if i.id in refused
        else WriteResult(i.id, ok=True, crm_id=i.target_id or f"00T{i.key}")
        for i in items
    ]
    outbox.record_results(db, items, results, max_attempts=3, now=AS_OF)


def _delete_an_account_with_tasks(db: Any) -> None:
    """Deleted in the CRM between runs: its open tasks are completed (no chunk reads it)."""
    with db.conn:
        db.conn.execute(
            "UPDATE accounts SET deleted_at = ? WHERE id = (SELECT max(account_id) FROM tasks"
            " WHERE is_closed = 0)",
            [encode_datetime(AS_OF)],
        )


def _person_closes_a_task(db: Any) -> None:
    with db.conn:
        db.conn.execute(
            "UPDATE tasks SET status = 'Completed', is_closed = 1, owned = '{}' "
            "WHERE id = (SELECT min(id) FROM tasks WHERE key LIKE 'departed_champion:%')"
        )


@pytest.mark.parametrize("chunk", [1, 7, 500])
def test_a_run_queues_chunk_by_chunk_what_the_all_at_once_plan_queued(
    org: Path, tmp_path: Path, chunk: int
) -> None:
    ref = _copy(org, tmp_path / "ref.db")
    got = _copy(org, tmp_path / "got.db")
    t1, t2 = AS_OF, AS_OF + timedelta(hours=6)
    # A first sync: every write queued, the per-owner cap holds some task creates back.
    ev_ref, p_ref = _reference(ref, AS_OF, t1)
    ev_got, p_got = _queued(got, AS_OF, t1, chunk)
    assert p_ref.counts()["create_task"] > 5 and p_ref.held  # creates made and held
    assert _outbox(got) == _outbox(ref)
    assert _rows(got, "flags") == _rows(ref, "flags")
    assert (p_got.counts(), p_got.per_owner) == (p_ref.counts(), p_ref.per_owner)
    assert p_got.items == () and p_got.queued == len(_outbox(got)) == len(p_ref.items)
    # The drain sends a kind at a time: fields, then task updates, completions, creates.
    kinds = [k for (k,) in got.conn.execute(
        "SELECT kind FROM outbox o JOIN json_each(?) j ON o.id = j.value ORDER BY j.key",
        [json.dumps(outbox.ready_ids(got, CRM))])]  # fmt: skip
    ranks = [outbox.KIND_ORDER[WriteKind(k)] for k in kinds]
    assert ranks == sorted(ranks) and len(set(ranks)) == 3
    # The CRM takes them (one contact update refused for good), a person closes a task,
    # contacts go stale, an account is deleted: tasks are updated, completed (fixed, gone),
    # left closed, created; the capped ones come now.
    for db in (ref, got):
        _drain(db, refuse=1)
        _person_closes_a_task(db)
        _delete_account(db)
        _delete_an_account_with_tasks(db)
    ev_ref, p_ref = _reference(ref, LATER, t2)
    ev_got, p_got = _queued(got, LATER, t2, chunk)
    c = p_ref.counts()
    assert c["complete_task"] and c["update_task"] and c["create_task"]
    assert _outbox(got) == _outbox(ref)
    assert (p_got.counts(), p_got.per_owner) == (p_ref.counts(), p_ref.per_owner)
    assert p_got.held_by_dead_rows == len(held_by_failures(ref, p_ref)) == 1
    assert _rows(got, "flags") == _rows(ref, "flags")
    # What a preview shows, chunk by chunk, is the all-at-once plan: every write, every
    # task held by the cap.
    with rolled_back(got):
        _ev, shown = evaluate_and_plan(got, CRM, rules.RuleSettings(), SETTINGS, as_of=LATER,
                                       seen_at=t2, store=False, chunk_size=chunk)  # fmt: skip
    _ev, again = _all_at_once(ref, LATER, t2)
    assert sorted(shown.items, key=lambda w: w.key) == sorted(again.items, key=lambda w: w.key)
    assert [h.key for h in shown.held] == [h.key for h in again.held]
    assert shown.conflicts == again.conflicts


def test_o8_a_run_that_fails_half_way_stores_no_flag_and_queues_no_write(
    org: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = _copy(org, tmp_path / "m.db")
    settle = Planner._settle
    calls = []

    def failing(self: Planner, *a: Any, **kw: Any) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        settle(self, *a, **kw)

    monkeypatch.setattr(Planner, "_settle", failing)
    with pytest.raises(OSError):
        _queued(db, AS_OF, AS_OF, 7)
    assert len(calls) == 3  # two chunks were queued before the failure, and rolled back
    assert _rows(db, "flags") == [] and _outbox(db) == []
