"""evaluate -> flags -> plan streamed in chunks of accounts gives what all at once gives.

The mirror holds a generated org (sandbox/generate, seed 7), loaded through the
Salesforce connector's field map as a pull would store it. The reference is the
all-at-once path: every result kept (one chunk), then `plan()` over all of them.
The streamed planner takes what the CRM holds from the views the rules just read
(nothing read twice); `plan()` reads those views again from the mirror.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crmsync import rules
from crmsync.connectors.salesforce.client import Settings
from crmsync.connectors.salesforce.fields import SOBJECTS, FieldInfo, object_maps
from crmsync.sandbox.generate import DEFAULT_AS_OF, iter_records
from crmsync.state import cursors, mirror
from crmsync.state.db import encode_datetime, open_db, rolled_back
from crmsync.state.flags import list_flags
from crmsync.state.model import ObjectType, Page
from crmsync.sync.evaluate import evaluate, evaluate_and_plan
from crmsync.sync.plan import plan
from crmsync.sync.writeback_settings import WritebackSettings

CRM = "salesforce"
SETTINGS = WritebackSettings(max_new_tasks_per_owner=5)  # the cap matters: creates are ranked
AS_OF = DEFAULT_AS_OF
LATER = AS_OF + timedelta(days=120)


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
