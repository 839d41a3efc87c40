"""`decide` is pure: accounts and what the CRM holds in, one list of writes out (no db, no HTTP).

Each case states what the CRM holds and what the rules found, and the writes
and conflicts an account manager would end up with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from crmsync.state.model import HygieneStatus, WriteKind
from crmsync.state.writeback import AccountRow, ContactRow, TaskRow
from crmsync.sync import ownership
from crmsync.sync import tasks as T
from crmsync.sync.plan import AccountInput, CrmHeld, Plan, decide
from crmsync.sync.writeback_settings import WritebackSettings

from .fakes import AS_OF, CRM, Result, coverage, single_threaded, stale

ACME = "001A"
KEY = f"single_threaded_account:{CRM}:{ACME}:{ACME}"
WANTED = ownership.account_values(coverage(ACME), None)


def account(owner: str | None = "005A", **owned: Any) -> AccountRow:
    return AccountRow(ACME, "Acme", owner, False, owned)


def contact(cid: str = "003A1", **owned: Any) -> ContactRow:
    return ContactRow(cid, ACME, "Ada Lovelace", "CTO", False, owned)


def task(status: str = "open", *, closed: bool = False, ours: bool = True) -> TaskRow:
    """crmsync's task as the CRM holds it; `ours=False`: a person changed it since."""
    values = {"subject": "Broaden", "body": "b", "priority": "normal", "owner_id": "005A",
              "status": status}  # fmt: skip
    signature = ownership.sign("tasks", values) if ours else None
    return TaskRow("00T1", KEY, ACME, None, "005A", "Broaden", "b", status, "normal", closed,
                   False, {"key": KEY, "signature": signature})  # fmt: skip


@dataclass(frozen=True)
class Case:
    name: str
    result: Result
    row: AccountRow = field(default_factory=account)
    contacts: Sequence[ContactRow] = ()
    written: Mapping[str, Any] = field(default_factory=dict)
    tasks: Sequence[TaskRow] = ()
    settings: WritebackSettings = field(default_factory=WritebackSettings)
    active: Mapping[str, bool] = field(default_factory=lambda: {"005A": True, "005B": True})
    evaluated: bool = True
    # what the account manager ends up with: (kind, target) per write, and conflicting fields
    writes: Sequence[tuple[WriteKind, str | None]] = ()
    conflicts: Sequence[str] = ()
    held: int = 0


def signed(obj: str = "accounts", **values: Any) -> dict[str, Any]:
    return {**values, "signature": ownership.sign(obj, values)}


CASES = [
    Case("blank account fields are written", Result(coverage=coverage(ACME)),
         writes=[(WriteKind.UPDATE_ACCOUNT, ACME)]),
    Case("the CRM already holds crmsync's signed values: nothing",
         Result(coverage=coverage(ACME)), row=account(**signed(**WANTED))),
    Case("a person's value is held, the other fields still written",
         Result(coverage=coverage(ACME)), row=account(coverage_score=90),
         writes=[(WriteKind.UPDATE_ACCOUNT, ACME)], conflicts=["coverage_score"]),
    Case("the guard off overwrites a person's value",
         Result(coverage=coverage(ACME)), row=account(coverage_score=90),
         settings=WritebackSettings(ownership_guard=False),
         writes=[(WriteKind.UPDATE_ACCOUNT, ACME)]),
    Case("a value crmsync wrote before signatures is crmsync's",
         Result(coverage=coverage(ACME)), row=account(coverage_score=40),
         written={"coverage_score": 40}, writes=[(WriteKind.UPDATE_ACCOUNT, ACME)]),
    Case("a never-flagged contact is left blank", Result(), contacts=[contact()]),
    Case("a stale contact gets its status and a grouped task",
         Result(flags=(stale(ACME, "003A1"),),
                contact_status={"003A1": (HygieneStatus.STALE, "Quiet since March.")}),
         contacts=[contact()],
         writes=[(WriteKind.UPDATE_CONTACT, "003A1"), (WriteKind.CREATE_TASK, None)]),
    Case("a contact whose status cleared is written ok", Result(),
         contacts=[contact(**signed("contacts", status="stale", reason="Quiet."))],
         writes=[(WriteKind.UPDATE_CONTACT, "003A1")]),
    Case("a status a person set is held with its reason", Result(),
         contacts=[contact(status="departed", reason="Left in May.")], conflicts=["status"]),
    Case("a new problem opens a task", Result(flags=(single_threaded(ACME),)),
         writes=[(WriteKind.CREATE_TASK, None)]),
    Case("tasks off: no task", Result(flags=(single_threaded(ACME),)),
         settings=WritebackSettings(tasks=False)),
    Case("over the per-owner cap the task is held", Result(flags=(single_threaded(ACME),)),
         settings=WritebackSettings(max_new_tasks_per_owner=0), held=1),
    Case("an open task whose text changed is updated, not duplicated",
         Result(flags=(single_threaded(ACME),)), tasks=[task()],
         writes=[(WriteKind.UPDATE_TASK, "00T1")]),
    Case("a task text a person edited is held", Result(flags=(single_threaded(ACME),)),
         tasks=[task(ours=False)], conflicts=["subject", "body"]),
    Case("a task whose problem went away completes", Result(), tasks=[task()],
         writes=[(WriteKind.COMPLETE_TASK, "00T1")]),
    Case("an account not evaluated keeps its task", Result(), tasks=[task()], evaluated=False),
    Case("a task a person closed stays closed", Result(flags=(single_threaded(ACME),)),
         tasks=[task("completed", closed=True, ours=False)]),
    Case("a task crmsync completed reopens", Result(flags=(single_threaded(ACME),)),
         tasks=[task("completed", closed=True)],
         writes=[(WriteKind.UPDATE_TASK, "00T1")]),
]  # fmt: skip


def run(case: Case) -> Plan:
    accounts = [AccountInput(case.row, case.result, case.contacts, case.written)]
    held = CrmHeld(tasks={KEY: list(case.tasks)} if case.tasks else {}, owner_active=case.active)
    evaluated = {ACME} if case.evaluated else set()
    return decide(CRM, accounts if case.evaluated else [], held, case.settings, as_of=AS_OF,
                  evaluated=evaluated)  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decide(case: Case) -> None:
    p = run(case)
    assert [(i.kind, i.target_id) for i in p.items] == list(case.writes)
    assert [c.field for c in p.conflicts] == list(case.conflicts)
    assert len(p.held) == case.held
    assert run(case) == p  # pure: the same inputs decide the same plan


def test_an_unchanged_open_task_is_not_rewritten() -> None:
    want = T.single_threaded_task(
        single_threaded(ACME),
        T.AccountFacts(CRM, ACME, "Acme", Result().tier, "005A"),
    )
    values = {"subject": want.subject, "body": want.body, "priority": "normal",
              "owner_id": "005A", "status": "open"}  # fmt: skip
    row = TaskRow("00T1", KEY, ACME, None, "005A", want.subject, want.body, "open", "normal",
                  False, False, {"key": KEY, "signature": ownership.sign("tasks", values)})  # fmt: skip
    p = run(Case("", Result(flags=(single_threaded(ACME),)), tasks=[row]))
    assert p.empty and not p.conflicts


def test_task_of_an_inactive_owner_goes_to_the_default_owner() -> None:
    settings = WritebackSettings(default_owner={CRM: "005Z"})
    p = run(Case("", Result(flags=(single_threaded(ACME),)), settings=settings,
                 active={"005A": False, "005B": True}))  # fmt: skip
    [create] = p.items
    assert create.payload["owner_id"] == "005Z" and create.owner_id == "005Z"


def test_created_task_carries_its_key_signature_and_due_date() -> None:
    [create] = run(Case("", Result(flags=(single_threaded(ACME),)))).items
    assert create.key == KEY and create.payload["key"] == KEY
    assert create.payload["signature"] == ownership.sign("tasks", create.payload)
    assert create.payload["due_date"] == "2026-11-30"  # growth: 7 days after AS_OF
