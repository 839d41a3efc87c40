"""Evaluating only what can have changed leaves what evaluating everything leaves.

Two copies of a generated org (sandbox/generate, seed 7) take the same random
changes through the pull's path (`mirror.apply_page`: contacts moved, renamed,
deleted and merged, roles added and removed, activity, bounces, snoozes, accounts
renamed and deleted, deals won, owners deactivated, a person's edit of crmsync's
own fields, and crmsync's own writes coming back) and the same clock moves (hours
to months). After each step one copy evaluates incrementally (sync/evaluate.py
`incremental`), the other everything; the flags table, the writes planned and the
outbox must be the same, and crmsync's writes land in both (the drain's record of
what it wrote, then the CRM's echo on the next pull).
"""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from crmsync import rules
from crmsync.state import cursors, mirror, outbox
from crmsync.state.db import decode
from crmsync.state.model import COLUMNS, CrmRecord, ObjectType, Page, WriteKind
from crmsync.sync.evaluate import evaluate_and_plan
from crmsync.sync.plan import enqueue
from crmsync.sync.writeback_settings import WritebackSettings

from .test_streamed import AS_OF, CRM, _copy, _load

SETTINGS = WritebackSettings(tasks=False)
RULES = rules.RuleSettings()


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dirty-org") / "mirror.db"
    _load(path)
    return path


class World:
    """The same change applied to both mirrors, and the same clock."""

    def __init__(self, dbs: list[Any], rng: random.Random) -> None:
        self.dbs, self.rng = dbs, rng
        self.now = AS_OF
        self.minute = 0

    def ids(self, table: str, where: str = "deleted_at IS NULL") -> list[str]:
        rows = self.dbs[0].conn.execute(f"SELECT id FROM {table} WHERE {where} ORDER BY id")
        return [r[0] for r in rows]

    def current(self, obj: ObjectType, id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        cols = COLUMNS[obj]
        row = (
            self.dbs[0]
            .conn.execute(
                f"SELECT {', '.join(cols)}, owned FROM {obj.value} WHERE crm = ? AND id = ?",
                [CRM, id],
            )
            .fetchone()
        )
        values = {c: decode(c, v) for c, v in zip(cols, row[:-1], strict=True)}
        return values, json.loads(row[-1]) if row[-1] else {}

    def apply(self, obj: ObjectType, records: list[CrmRecord]) -> None:
        for db in self.dbs:
            with db.conn:
                mirror.apply_page(
                    db, CRM, Page(obj, records, None), generation=cursors.get(db, CRM, obj).generation,
                    seen_at=self.now,
                )  # fmt: skip

    def record(self, obj: ObjectType, id: str, **kw: Any) -> CrmRecord:
        self.minute += 1
        values, owned = self.current(obj, id) if self.exists(obj, id) else ({}, {})
        owned = kw.pop("owned", owned)
        deleted = kw.pop("deleted", False)
        merged_into = kw.pop("merged_into", None)
        values.update(kw)
        return CrmRecord(
            obj, id, self.now + timedelta(seconds=self.minute), deleted=deleted, values=values,
            raw={"Id": id}, owned=owned, merged_into=merged_into,
        )  # fmt: skip

    def exists(self, obj: ObjectType, id: str) -> bool:
        return bool(
            self.dbs[0]
            .conn.execute(f"SELECT 1 FROM {obj.value} WHERE crm = ? AND id = ?", [CRM, id])
            .fetchone()
        )

    # ------------------------------------------------------------ the changes

    def change(self) -> str:
        r = self.rng
        kind = r.choice(
            ["move", "rename", "delete_contact", "merge_contact", "add_role", "drop_role",
             "activity", "bounce", "snooze", "account", "delete_account", "deal", "owner",
             "person_edit", "title", "clock"]
        )  # fmt: skip
        contacts, accounts = self.ids("contacts"), self.ids("accounts")
        c, a = r.choice(contacts), r.choice(accounts)
        C, A = ObjectType.CONTACT, ObjectType.ACCOUNT
        if kind == "move":
            self.apply(C, [self.record(C, c, account_id=a)])
        elif kind == "rename":
            other = self.current(C, r.choice(contacts))[0]
            self.apply(C, [self.record(C, c, first_name=other["first_name"],
                                       last_name=other["last_name"])])  # fmt: skip
        elif kind == "title":
            self.apply(C, [self.record(C, c, title=r.choice(["CFO", "VP Sales", None]))])
        elif kind == "delete_contact":
            self.apply(C, [self.record(C, c, deleted=True)])
        elif kind == "merge_contact":
            survivor = r.choice([x for x in contacts if x != c])
            self.apply(C, [self.record(C, c, merged_into=survivor)])
        elif kind == "add_role":
            opps = self.ids("opportunities")
            if opps:
                rid = f"R-new-{self.minute}"
                self.apply(ObjectType.CONTACT_ROLE, [CrmRecord(
                    ObjectType.CONTACT_ROLE, rid, self.now, values={
                        "opportunity_id": r.choice(opps), "contact_id": c,
                        "role": r.choice(["Economic Buyer", "Champion", "Decision Maker"]),
                        "is_primary": False}, raw={"Id": rid})])  # fmt: skip
        elif kind == "drop_role":
            roles = self.ids("contact_roles")
            if roles:
                role = r.choice(roles)
                self.apply(ObjectType.CONTACT_ROLE, [self.record(ObjectType.CONTACT_ROLE, role,
                                                                 deleted=True)])  # fmt: skip
        elif kind == "activity":
            days = r.choice([0, 1, 30, 89, 90, 91, 150, 200, 400])
            self.apply(C, [self.record(C, c, last_activity_at=self.now - timedelta(days=days))])
        elif kind == "bounce":
            self.apply(C, [self.record(C, c, email_bounced=True, bounce_reason="hard bounce",
                                       bounced_at=self.now)])  # fmt: skip
        elif kind == "snooze":
            until = (self.now + timedelta(days=r.choice([1, 3, 40]))).date()
            target = r.choice([(A, a), (C, c)])
            self.apply(target[0], [self.record(*target, exemption=f"snooze until {until}")])
        elif kind == "account":
            self.apply(A, [self.record(A, a, name=f"Renamed {self.minute}",
                                       domain=r.choice(["x.test", "y.test", None]),
                                       renewal_date=(self.now + timedelta(days=r.choice(
                                           [5, 60, 119, 121, 200]))).date())])  # fmt: skip
        elif kind == "delete_account":
            self.apply(A, [self.record(A, a, deleted=True)])
        elif kind == "deal":
            opps = self.ids("opportunities")
            if opps:
                o = r.choice(opps)
                won = r.random() < 0.5
                self.apply(ObjectType.OPPORTUNITY, [self.record(
                    ObjectType.OPPORTUNITY, o, is_closed=won, is_won=won,
                    close_date=(self.now + timedelta(days=r.choice([-400, -10, 30, 130]))).date(),
                )])  # fmt: skip
        elif kind == "owner":
            owners = self.ids("owners")
            if owners:
                o = r.choice(owners)
                self.apply(ObjectType.OWNER, [self.record(ObjectType.OWNER, o,
                                                          active=r.random() < 0.5)])  # fmt: skip
        elif kind == "person_edit":
            values, owned = self.current(A, a)
            owned = {**owned, "coverage_status": r.choice(["red", "", None])}
            self.apply(A, [self.record(A, a, owned=owned)])
        return kind

    def move_clock(self) -> None:
        step = self.rng.choice([timedelta(hours=1), timedelta(hours=20), timedelta(days=1),
                                timedelta(days=29), timedelta(days=95)])  # fmt: skip
        self.now += step

    def drain_and_echo(self, writes: list[Any]) -> None:
        """crmsync's writes land (the drain records them), then a pull brings them back."""
        for w in writes:
            obj = {WriteKind.UPDATE_ACCOUNT: ObjectType.ACCOUNT,
                   WriteKind.UPDATE_CONTACT: ObjectType.CONTACT}[w.kind]  # fmt: skip
            for db in self.dbs:
                outbox.record_written(db, CRM, obj, w.target_id, dict(w.payload),
                                      written_at=self.now)  # fmt: skip
                with db.conn:
                    db.conn.execute("UPDATE outbox SET status = 'done' WHERE crm = ?", [CRM])
            if self.exists(obj, w.target_id):
                values, owned = self.current(obj, w.target_id)
                self.apply(obj, [self.record(obj, w.target_id, owned={**owned, **w.payload})])


def _flags(db: Any) -> list[tuple[Any, ...]]:
    return db.conn.execute("SELECT * FROM flags ORDER BY key").fetchall()


def _outbox(db: Any) -> list[tuple[Any, ...]]:
    return db.conn.execute("SELECT kind, key, payload, status FROM outbox ORDER BY key").fetchall()


def _items(p: Any) -> list[tuple[Any, ...]]:
    return sorted((str(i.kind), i.key, repr(sorted(i.payload.items()))) for i in p.items)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_evaluation_equals_full(org: Path, tmp_path: Path, seed: int) -> None:
    inc, full = _copy(org, tmp_path / "inc.db"), _copy(org, tmp_path / "full.db")
    world = World([inc, full], random.Random(seed))
    evaluated, steps = [], 20
    for step in range(steps + 1):
        if step:
            for _ in range(world.rng.choice([0, 1, 1, 2, 3])):
                world.change()
            if world.rng.random() < 0.5:
                world.move_clock()
        seen = world.now + timedelta(seconds=step)
        ev_i, plan_i = evaluate_and_plan(inc, CRM, RULES, SETTINGS, as_of=world.now,
                                         seen_at=seen, incremental=True)  # fmt: skip
        ev_f, plan_f = evaluate_and_plan(full, CRM, RULES, SETTINGS, as_of=world.now,
                                         seen_at=seen)  # fmt: skip
        assert _flags(inc) == _flags(full), f"step {step}"
        assert _items(plan_i) == _items(plan_f), f"step {step}"
        assert ev_i.by_rule == ev_f.by_rule and ev_i.coverage == ev_f.coverage
        assert ev_i.accounts == ev_f.accounts
        enqueue(inc, plan_i)
        enqueue(full, plan_f)
        assert _outbox(inc) == _outbox(full), f"step {step}"
        world.drain_and_echo(list(plan_f.items))
        evaluated.append(ev_i.evaluated)
    # and it did evaluate less than everything on the way
    assert step and sum(evaluated[1:]) < steps * evaluated[0]


def test_an_unchanged_mirror_evaluates_nothing(org: Path, tmp_path: Path) -> None:
    db = _copy(org, tmp_path / "m.db")
    first, _ = evaluate_and_plan(db, CRM, RULES, SETTINGS, as_of=AS_OF, seen_at=AS_OF,
                                 incremental=True)  # fmt: skip
    later = AS_OF + timedelta(hours=1)
    again, _plan = evaluate_and_plan(db, CRM, RULES, SETTINGS, as_of=later, seen_at=later,
                                    incremental=True)  # fmt: skip
    assert first.evaluated > 0 and again.evaluated == 0
    assert again.accounts == first.accounts and again.by_rule == first.by_rule
