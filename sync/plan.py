"""Plan the write-back: from the rules' results and the mirror, the writes a run should make.

For each evaluated account `plan()` works out what the CRM *should* hold in the
fields crmsync owns, compares it with what the CRM *does* hold (the mirror's
`owned` values, refreshed by every pull) and keeps only the differences
(docs/design.md "Write-back"; a run over unchanged data plans nothing, RELIABILITY
W10):

- account fields: stakeholders, engaged, roles_covered, coverage_score,
  coverage_status, hygiene_summary (from the rules' Coverage);
- contact fields: status (ok | stale | bouncing | departed) and a one-line
  reason. A contact that was never flagged is left blank rather than written
  "ok" (that would be one write per contact of the org on the first run); a
  contact whose earlier status cleared is written "ok";
- tasks, owned by the account owner (else, if the account has none or that
  user is deactivated or unknown, `default_owner`, else the active owner who
  owns the most accounts, with one warning per run naming the accounts): one per departed
  champion, one per single-threaded account, one per account grouping its
  stale and bouncing contacts (text: sync/tasks.py). An open task with the
  same key is updated when its content changed, never duplicated; the task
  of a problem that went away is completed with a line saying why; a task
  crmsync completed is reopened if the problem comes back; a task a person
  closed is left closed. At most `max_new_tasks_per_owner` tasks are created
  per owner per run; the rest are held for the next run.

Ownership guard (W8, docs/ownership.md, the rule in sync/ownership.py). crmsync
overwrites a value only when the CRM itself shows it is crmsync's: the
record's signature field (written in the same record write as the values)
holds a hash of exactly that value; for installs from before signatures, the
mirror's record of crmsync's writes (`written`) says so. A blank field is
free; a field handed back (`crmsync conflicts handback`) is crmsync's again.
Any other value is a person's (or a workflow's, or another integration's):
left alone and reported as a `Conflict`. So a rebuilt mirror overwrites
nothing a person set, and a reverted value is never rewritten in a loop (W9).
Contact status and reason move together: a conflict on either holds both.
Every write of owned fields carries the record's new signature.

`enqueue(db, plan)` puts the items into the outbox with stable idempotency
keys built from account/contact ids and flag keys (never timestamps):
`update_account:<crm>:<id>`, `update_contact:<crm>:<id>`, `update_task:<task key>`,
`complete_task:<task key>`, and for a create the task key itself
(`<rule>:<crm>:<account>:<subject>`, `contact_hygiene:<crm>:<account>:<account>`),
which is also `payload["key"]`, the value stamped on the task in the CRM.
`render_plan` / `format_plan` show a plan per owner for `--dry-run` and
`crmsync plan`.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Protocol

import sqlite_utils

from crmsync.state import conflicts as conflict_store
from crmsync.state import views
from crmsync.state.model import (
    Coverage,
    Flag,
    HygieneStatus,
    ObjectType,
    Severity,
    Tier,
    WriteKind,
)
from crmsync.state.text import fit, printable

from . import ownership
from . import tasks as T
from .ownership import SIGNATURE
from .ownership import norm as norm  # re-exported: callers compare as the planner does
from .ownership import same as same

log = logging.getLogger(__name__)

TIERS = tuple(t.value for t in Tier)
PRIORITIES = ("high", "normal", "low")
CHUNK = 500  # accounts read from the mirror per query batch


# ---------------------------------------------------------------- settings


def _default_due_days() -> dict[str, int]:
    return {"strategic": 3, "growth": 7, "maintenance": 14, "none": 10}


def _default_priority() -> dict[str, str]:
    return {"strategic": "high", "growth": "normal", "maintenance": "low", "none": "normal"}


@dataclass(frozen=True)
class WritebackSettings:
    """[writeback] in sync.toml. Field names belong to the connectors' tables, not here.

    due_days / priority: per tier (strategic, growth, maintenance, none); a table
    that names some tiers keeps the defaults for the others. default_owner: per
    CRM, the owner id for tasks of accounts without an owner, e.g.
    `default_owner = { salesforce = "005...", hubspot = "123" }`.
    """

    enabled: bool = True
    dry_run: bool = False
    default_owner: Mapping[str, str] = field(default_factory=dict)
    max_new_tasks_per_owner: int = 25
    max_attempts: int = 5
    due_days: Mapping[str, int] = field(default_factory=_default_due_days)
    priority: Mapping[str, str] = field(default_factory=_default_priority)
    tasks: bool = True  # false: write fields only, create no tasks
    ownership_guard: bool = True  # false: overwrite values people changed (not recommended)

    def __post_init__(self) -> None:
        object.__setattr__(self, "due_days", {**_default_due_days(), **dict(self.due_days)})
        object.__setattr__(self, "priority", {**_default_priority(), **dict(self.priority)})
        object.__setattr__(self, "default_owner", dict(self.default_owner))

    def validate(self) -> None:
        """Raise ValueError naming the key and the fix (sync/config.py adds the table name)."""
        for name in ("due_days", "priority"):
            for tier in getattr(self, name):
                if tier not in TIERS:
                    raise ValueError(f"{name}.{tier}: unknown tier; use one of {', '.join(TIERS)}.")
        for tier, days in self.due_days.items():
            if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 365:
                raise ValueError(f"due_days.{tier} must be a whole number of days from 0 to 365.")
        for tier, value in self.priority.items():
            if str(value).lower() not in PRIORITIES:
                raise ValueError(
                    f"priority.{tier} = {value!r}; use one of {', '.join(PRIORITIES)}."
                )
        for crm in self.default_owner:
            if crm not in ("salesforce", "hubspot"):
                raise ValueError(f"default_owner.{crm}: unknown CRM; use salesforce or hubspot.")
        if self.max_new_tasks_per_owner < 0:
            raise ValueError("max_new_tasks_per_owner must be 0 or more.")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be 1 or more.")


# ---------------------------------------------------------------- what plan() reads


class AccountResult(Protocol):
    """What rules.evaluate_account returns, as far as the planner reads it."""

    flags: Sequence[Flag]
    coverage: Coverage | None
    contact_status: Mapping[str, tuple[HygieneStatus, str]]


@dataclass(frozen=True)
class AccountRow:
    id: str
    name: str
    owner_id: str | None
    tier_raw: str | None
    deleted: bool
    owned: Mapping[str, Any]


@dataclass(frozen=True)
class ContactRow:
    id: str
    account_id: str | None
    name: str
    title: str | None
    deleted: bool
    owned: Mapping[str, Any]


@dataclass(frozen=True)
class TaskRow:
    id: str
    key: str
    account_id: str | None
    contact_id: str | None
    owner_id: str | None
    subject: str | None
    body: str | None
    status: str | None
    priority: str | None
    is_closed: bool
    deleted: bool
    owned: Mapping[str, Any] = field(default_factory=dict)  # key, signature

    def current(self) -> dict[str, Any]:
        """The task's signed fields and its signature, as the CRM holds them."""
        return {
            "subject": self.subject, "body": self.body, "priority": self.priority,
            "owner_id": self.owner_id, "status": self.status,
            SIGNATURE: self.owned.get(SIGNATURE),
        }  # fmt: skip


# ---------------------------------------------------------------- the plan


@dataclass(frozen=True)
class PlannedWrite:
    """One intended write; becomes one outbox row."""

    kind: WriteKind
    key: str  # outbox idempotency key
    target_id: str | None  # CRM id to update; None for creates
    payload: Mapping[str, Any]
    old: Mapping[str, Any]  # what the CRM holds now, for display
    owner_id: str | None  # whose queue / whose account, for grouping
    account_id: str
    label: str  # account name, contact name or task subject


@dataclass(frozen=True)
class Conflict:
    """A value in a field crmsync writes that is not crmsync's: left alone and reported (W8).

    `last_written` is what crmsync last wrote there if the mirror knows it;
    `after_write` says crmsync had written the field (so this value replaced
    crmsync's: a revert or an edit). `who`, `since` and `handed_back` come from the
    conflicts table (sync/conflicts.py) for display."""

    object: str  # "accounts" | "contacts" | "tasks"
    record_id: str
    field: str
    crm_value: Any
    last_written: Any
    intended: Any
    owner_id: str | None
    account_id: str
    label: str
    after_write: bool = False
    who: str | None = None  # state.model.ChangeKind value
    who_name: str | None = None
    since: datetime | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.object, self.record_id, self.field)


@dataclass(frozen=True)
class Plan:
    crm: str
    as_of: datetime
    items: tuple[PlannedWrite, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    held: tuple[PlannedWrite, ...] = ()  # task creates over the per-owner cap
    owner_names: Mapping[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.items

    def counts(self) -> dict[str, int]:
        out = {k.value: 0 for k in WriteKind}
        for item in self.items:
            out[item.kind.value] += 1
        out["conflicts"] = len(self.conflicts)
        out["held"] = len(self.held)
        return out

    def by_owner(self) -> dict[str | None, OwnerPlan]:
        """Items, conflicts and held tasks per owner, owners in id order (None last)."""
        groups: dict[str | None, OwnerPlan] = {}

        def group(owner: str | None) -> OwnerPlan:
            if owner not in groups:
                groups[owner] = OwnerPlan(owner, self.owner_names.get(owner or ""))
            return groups[owner]

        for item in self.items:
            group(item.owner_id).items.append(item)
        for c in self.conflicts:
            group(c.owner_id).conflicts.append(c)
        for h in self.held:
            group(h.owner_id).held.append(h)
        order = sorted(groups, key=lambda o: (o is None, o or ""))
        return {o: groups[o] for o in order}


@dataclass
class OwnerPlan:
    owner_id: str | None
    owner_name: str | None
    items: list[PlannedWrite] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    held: list[PlannedWrite] = field(default_factory=list)


# ---------------------------------------------------------------- value comparison

# `norm` and `same` live in sync/ownership.py (the signature hashes the same
# normal form); they are imported above and stay importable from here.


# ---------------------------------------------------------------- plan()


def plan(
    db: sqlite_utils.Database,
    crm: str,
    results_by_account: Mapping[str, AccountResult],
    settings: WritebackSettings,
    *,
    as_of: datetime,
) -> Plan:
    """The writes that bring `crm` in line with the rules' results, diffed against the mirror.

    `results_by_account` maps account id -> that account's rules result. Only
    those accounts (and their contacts and crmsync tasks) are considered, plus
    open crmsync tasks whose account was deleted from the CRM (completed).
    Reads the mirror; writes nothing.
    """
    store = MirrorReader(db, crm)
    planner = _Planner(
        crm,
        settings,
        as_of,
        inactive_owners=store.inactive_owners(),
        handed_back=conflict_store.handed_back(db, crm),
        owners=store.owner_states(),
        fallback_owner=views.owner_with_most_accounts(db, crm),
    )
    ids = sorted(results_by_account)
    for chunk in _chunks(ids, CHUNK):
        accounts = store.accounts(chunk)
        contacts = store.contacts_of(chunk)
        written = store.written(ObjectType.ACCOUNT.value, chunk)
        contact_ids = [c.id for cs in contacts.values() for c in cs]
        written_contacts = store.written(ObjectType.CONTACT.value, contact_ids)
        people = {c.id: T.Person(c.id, c.name, c.title) for cs in contacts.values() for c in cs}
        flagged = {
            f.contact_id or f.subject_id for a in chunk for f in results_by_account[a].flags or ()
        }
        people.update(store.people(sorted(flagged - set(people))))
        for account_id in chunk:
            row = accounts.get(account_id)
            if row is None or row.deleted:
                continue
            planner.account(
                row,
                results_by_account[account_id],
                contacts.get(account_id, []),
                written.get(account_id, {}),
                written_contacts,
                people,
            )
    task_rows = store.tasks()
    task_written = store.written(
        ObjectType.TASK.value, [t.id for ts in task_rows.values() for t in ts]
    )
    gone = store.deleted_accounts(
        {T.account_of_key(k) or "" for k in task_rows} - set(results_by_account)
    )
    planner.tasks(task_rows, task_written, set(results_by_account), gone)
    owners = {o for o in planner.owners() if o}
    return planner.finish(store.owner_names(owners))


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class _Planner:
    """Accumulates the plan account by account; `finish()` applies the task cap."""

    def __init__(
        self,
        crm: str,
        settings: WritebackSettings,
        as_of: datetime,
        inactive_owners: frozenset[str] = frozenset(),
        handed_back: Mapping[tuple[str, str], set[str]] | None = None,
        owners: Mapping[str, bool] | None = None,
        fallback_owner: str | None = None,
    ) -> None:
        self.crm = crm
        self.inactive = inactive_owners
        self.owner_active = dict(owners or {})  # owner id -> active, as the mirror knows them
        self.fallback_owner = fallback_owner  # the active owner with the most accounts
        self.fallback_accounts: set[str] = set()  # accounts whose tasks went to it
        self.handed_back = dict(handed_back or {})
        self.settings = settings
        self.as_of = as_of
        self.items: list[PlannedWrite] = []
        self.conflicts: list[Conflict] = []
        self.creates: list[tuple[int, str, PlannedWrite]] = []
        self.desired: dict[str, tuple[T.TaskContent, T.AccountFacts]] = {}
        self.exempted: set[str] = set()  # keys of flags an account manager exempted

    # -------------------------------------------------------- fields

    def account(
        self,
        row: AccountRow,
        result: AccountResult,
        contacts: Sequence[ContactRow],
        written: Mapping[str, Any],
        written_contacts: Mapping[str, Mapping[str, Any]],
        people: Mapping[str, T.Person],
    ) -> None:
        facts = self._facts(row, result)
        cov = result.coverage
        if cov is not None:
            intended = {
                "stakeholders": cov.stakeholders,
                "engaged": cov.engaged,
                "roles_covered": _within("; ".join(cov.roles_covered), T.ROLES_MAX),
                "coverage_score": cov.score,
                "coverage_status": _value(cov.status),
                "hygiene_summary": _within(
                    _one_line_or_text(getattr(result, "hygiene_summary", None) or cov.summary),
                    T.SUMMARY_MAX,
                ),
            }
            self._fields(
                ObjectType.ACCOUNT, WriteKind.UPDATE_ACCOUNT, row.id, row.owned, intended,
                written, facts, row.name,
            )  # fmt: skip
        statuses = result.contact_status or {}
        for contact in contacts:
            if contact.deleted:
                continue
            status, reason = statuses.get(contact.id, (HygieneStatus.OK, ""))
            self._contact(contact, status, reason, written_contacts.get(contact.id, {}), facts)
        if self.settings.tasks:
            self._desired_tasks(result, facts, people)

    def _contact(
        self,
        contact: ContactRow,
        status: HygieneStatus | str,
        reason: str | None,
        written: Mapping[str, Any],
        facts: T.AccountFacts,
    ) -> None:
        status_value = _value(status)
        intended: dict[str, Any] = {
            "status": status_value,
            "reason": None
            if status_value == HygieneStatus.OK.value
            else _within(_one_line(reason), T.REASON_MAX),
        }
        current = contact.owned
        if status_value == HygieneStatus.OK.value and norm("status", current.get("status")) in (
            None,
            HygieneStatus.OK.value,
        ):
            # Never flagged (blank) or already ok: nothing to say, nothing to write.
            if norm("reason", current.get("reason")) is None:
                return
            intended = {"reason": None}
        payload, old, conflicts = self._guard(
            ObjectType.CONTACT.value, contact.id, intended, current, written, facts, contact.name
        )
        if conflicts:  # status and reason move together
            self.conflicts.extend(conflicts)
            return
        if payload:
            self._add(
                WriteKind.UPDATE_CONTACT, f"update_contact:{self.crm}:{contact.id}", contact.id,
                payload, old, facts, contact.name,
            )  # fmt: skip

    def _fields(
        self,
        obj: ObjectType,
        kind: WriteKind,
        record_id: str,
        current: Mapping[str, Any],
        intended: Mapping[str, Any],
        written: Mapping[str, Any],
        facts: T.AccountFacts,
        label: str,
    ) -> None:
        payload, old, conflicts = self._guard(
            obj.value, record_id, intended, current, written, facts, label
        )
        self.conflicts.extend(conflicts)
        if payload:
            key = f"{kind.value}:{self.crm}:{record_id}"
            self._add(kind, key, record_id, payload, old, facts, label)

    def _record(
        self, obj: str, record_id: str, written: Mapping[str, Any], current: Mapping[str, Any]
    ) -> ownership.Record:
        """What shows which of this record's values are crmsync's (sync/ownership.py)."""
        return ownership.Record.of(
            current, written, self.handed_back.get((obj, record_id), ()),
            guard=self.settings.ownership_guard,
        )  # fmt: skip

    def _guard(
        self,
        obj: str,
        record_id: str,
        intended: Mapping[str, Any],
        current: Mapping[str, Any],
        written: Mapping[str, Any],
        facts: T.AccountFacts,
        label: str,
        owner_id: str | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any], list[Conflict]]:
        """Diff intended against the CRM's values; hold values that are not crmsync's
        (sync/ownership.py). A payload carries the record's new signature."""
        own = self._record(obj, record_id, written, current)
        payload: dict[str, Any] = {}
        old: dict[str, Any] = {}
        conflicts: list[Conflict] = []
        for name, value in intended.items():
            crm_value = current.get(name)
            decision = own.decide(name, value, crm_value)
            if decision is ownership.Decision.CONFLICT:
                conflicts.append(
                    Conflict(
                        object=obj,
                        record_id=record_id,
                        field=name,
                        crm_value=crm_value,
                        last_written=written.get(name),
                        intended=value,
                        owner_id=owner_id or self._owner(facts),
                        account_id=facts.id,
                        label=label,
                        after_write=own.wrote_before(name),
                    )  # fmt: skip
                )
            elif decision is ownership.Decision.WRITE:
                payload[name] = value
                old[name] = crm_value
        if payload:
            signature = own.after(obj, current, payload)
            if signature != current.get(SIGNATURE):
                payload[SIGNATURE] = signature
        return payload, old, conflicts

    # -------------------------------------------------------- tasks

    def _desired_tasks(
        self,
        result: AccountResult,
        facts: T.AccountFacts,
        people: Mapping[str, T.Person],
    ) -> None:
        self.exempted.update(f.key for f in result.flags or () if f.suppressed)
        # Notes (severity info: a role address, a single soft bounce) inform; they are not
        # problems for an owner's queue, and the contact's own status stays ok.
        flags = [
            f for f in result.flags or ()
            if not f.suppressed and _value(f.severity) != Severity.INFO.value
        ]
        statuses = result.contact_status or {}
        departed = {
            f.contact_id or f.subject_id for f in flags if T.rule_kind(f.rule) == T.DEPARTED
        }
        hygiene: dict[str, tuple[str, str]] = {}  # contact id -> (kind, reason); bouncing wins
        for flag in sorted(flags, key=lambda f: f.key):
            kind = T.rule_kind(flag.rule)
            cid = flag.contact_id or flag.subject_id
            if kind == T.DEPARTED:
                self._want(T.departed_task(flag, facts, people.get(cid)), facts)
            elif kind == T.SINGLE_THREADED:
                self._want(T.single_threaded_task(flag, facts), facts)
            elif kind in (T.STALE, T.BOUNCING) and cid not in departed:
                if hygiene.get(cid, ("",))[0] == T.BOUNCING:
                    continue
                status, reason = statuses.get(cid, (None, ""))
                same_kind = _value(status) == (
                    HygieneStatus.BOUNCING.value
                    if kind == T.BOUNCING
                    else HygieneStatus.STALE.value
                )
                hygiene[cid] = (kind, (reason if same_kind and reason else flag.explanation))
        if hygiene:
            stale: list[tuple[T.Person, str]] = []
            bouncing: list[tuple[T.Person, str]] = []
            for cid, (kind, reason) in hygiene.items():
                person = people.get(cid) or T.Person(cid, f"contact {cid}")
                (bouncing if kind == T.BOUNCING else stale).append((person, reason))
            task = T.hygiene_task(facts, T.sorted_people(stale), T.sorted_people(bouncing))
            self._want(task, facts)

    def _want(self, task: T.TaskContent, facts: T.AccountFacts) -> None:
        self.desired[task.key] = (task, facts)

    def tasks(
        self,
        rows: Mapping[str, Sequence[TaskRow]],
        written: Mapping[str, Mapping[str, Any]],
        evaluated: set[str],
        gone_accounts: set[str],
    ) -> None:
        """Create, update, reopen or complete crmsync's tasks against what the CRM holds."""
        for key in sorted(set(self.desired) | set(rows)):
            existing = list(rows.get(key, ()))  # deleted ones too: a person removed it
            open_ = sorted(
                (t for t in existing if not t.is_closed and not t.deleted), key=lambda t: t.id
            )
            want = self.desired.get(key)
            if want is not None:
                self._task_wanted(want, open_, existing, written)
                continue
            account_id = T.account_of_key(key) or (open_[0].account_id if open_ else None)
            if account_id in evaluated or account_id in gone_accounts:
                for task in open_:
                    self._complete(task, account_id or "", gone=account_id in gone_accounts,
                                   written=written.get(task.id, {}))  # fmt: skip

    def _task_wanted(
        self,
        want: tuple[T.TaskContent, T.AccountFacts],
        open_: Sequence[TaskRow],
        existing: Sequence[TaskRow],
        written: Mapping[str, Mapping[str, Any]],
    ) -> None:
        content, facts = want
        owner = self._owner(facts, task=True)
        prio = T.priority(facts.tier, self.settings.priority)
        if open_:
            self._update(content, facts, open_[0], owner, prio, written.get(open_[0].id, {}))
            for dup in open_[1:]:  # a duplicate from an older crash: close it
                self._complete(dup, facts.id, duplicate=True, written=written.get(dup.id, {}))
            return
        # crmsync completed it (the signature, or the mirror's record of crmsync's writes,
        # says crmsync wrote "completed") and the problem is back: reopen. A task a
        # person closed stays closed.
        ours = [
            t
            for t in existing
            if not t.deleted
            and ownership.canon("status", t.status) == "completed"
            and self._record(ObjectType.TASK.value, t.id, written.get(t.id, {}), t.current())
            .wrote("status", t.status)
        ]
        if ours:
            task = sorted(ours, key=lambda t: t.id)[0]
            payload = {
                "key": content.key, "status": T.STATUS_OPEN, "subject": content.subject,
                "body": content.body, "priority": prio,
                "due_date": T.due_date(self.as_of, facts.tier, self.settings.due_days).isoformat(),
            }  # fmt: skip
            if owner:
                payload["owner_id"] = owner
            own = self._record(ObjectType.TASK.value, task.id, written.get(task.id, {}),
                               task.current())  # fmt: skip
            payload[SIGNATURE] = own.after(ObjectType.TASK.value, task.current(), payload)
            old = {"status": task.status, "subject": task.subject}
            self._add(WriteKind.UPDATE_TASK, f"update_task:{content.key}", task.id, payload, old,
                      facts, content.subject, owner)  # fmt: skip
            return
        if existing:  # closed or deleted by a person while the problem persists: respect it
            return
        payload = {
            "key": content.key,
            "subject": content.subject,
            "body": content.body,
            "status": T.STATUS_OPEN,
            "priority": prio,
            "due_date": T.due_date(self.as_of, facts.tier, self.settings.due_days).isoformat(),
            "account_id": content.account_id,
        }
        if content.contact_id:
            payload["contact_id"] = content.contact_id
        if owner:
            payload["owner_id"] = owner
        payload[SIGNATURE] = ownership.sign(ObjectType.TASK.value, payload)
        item = PlannedWrite(
            WriteKind.CREATE_TASK, content.key, None, payload, {}, owner,
            facts.id, content.subject,
        )  # fmt: skip
        self.creates.append((content.rank, content.key, item))

    def _update(
        self,
        content: T.TaskContent,
        facts: T.AccountFacts,
        task: TaskRow,
        owner: str | None,
        prio: str,
        written: Mapping[str, Any],
    ) -> None:
        intended: dict[str, Any] = {
            "subject": content.subject,
            "body": content.body,
            "priority": prio,
        }
        if owner:
            intended["owner_id"] = owner
        current = task.current()
        payload, old, conflicts = self._guard(
            ObjectType.TASK.value, task.id, intended, current, written, facts, content.subject,
            owner_id=task.owner_id or owner,
        )  # fmt: skip
        self.conflicts.extend(conflicts)
        if payload:
            payload["key"] = content.key
            self._add(WriteKind.UPDATE_TASK, f"update_task:{content.key}", task.id, payload, old,
                      facts, content.subject, task.owner_id or owner)  # fmt: skip

    def _complete(
        self,
        task: TaskRow,
        account_id: str,
        *,
        gone: bool = False,
        duplicate: bool = False,
        written: Mapping[str, Any] | None = None,
    ) -> None:
        if duplicate:
            note = (
                f"Closed automatically on {T._day(self.as_of)}: a duplicate of another open task."
            )
        elif gone:
            note = T.completion_note_gone(self.as_of)
        elif task.key in self.exempted:
            note = T.completion_note_exempted(self.as_of)
        else:
            note = T.completion_note(_kind_of_key(task.key), self.as_of)
        payload: dict[str, Any] = {
            "key": task.key, "status": T.STATUS_COMPLETED, "body": T.with_note(task.body, note),
        }  # fmt: skip
        own = self._record(ObjectType.TASK.value, task.id, written or {}, task.current())
        payload[SIGNATURE] = own.after(ObjectType.TASK.value, task.current(), payload)
        key = f"complete_task:{task.key}" + (f":{task.id}" if duplicate else "")
        self.items.append(
            PlannedWrite(
                WriteKind.COMPLETE_TASK,
                key,
                task.id,
                payload,
                {"status": task.status},
                task.owner_id,
                account_id,
                task.subject or task.key,
            )  # fmt: skip
        )

    # -------------------------------------------------------- helpers

    def _facts(self, row: AccountRow, result: AccountResult) -> T.AccountFacts:
        cov = result.coverage
        return T.AccountFacts(
            crm=self.crm,
            id=row.id,
            name=row.name,
            tier=_tier(result, row),
            owner_id=row.owner_id,
            stakeholders=cov.stakeholders if cov else None,
            engaged=cov.engaged if cov else None,
            roles_covered=tuple(cov.roles_covered) if cov else (),
        )

    def _owner(self, facts: T.AccountFacts, *, task: bool = False) -> str | None:
        """Who the account's tasks belong to: the account owner; if the account has
        none, or that user is deactivated (the CRM refuses tasks for them, e.g.
        Salesforce INACTIVE_OWNER_OR_USER; HubSpot lists them as archived owners) or
        unknown to the mirror's owners, `default_owner`; if that is unset, the active
        owner with the most accounts (`task=True` notes the account for the warning)."""
        if facts.owner_id and self._active(facts.owner_id):
            return facts.owner_id
        default = self.settings.default_owner.get(self.crm)
        if default:
            return default
        if self.fallback_owner and task:
            self.fallback_accounts.add(facts.id)
        return self.fallback_owner

    def _active(self, owner_id: str) -> bool:
        if owner_id in self.inactive:
            return False
        if owner_id in self.owner_active:
            return self.owner_active[owner_id]
        return not self.owner_active  # the mirror knows no owners at all: trust the account

    def _add(
        self,
        kind: WriteKind,
        key: str,
        target: str | None,
        payload: Mapping[str, Any],
        old: Mapping[str, Any],
        facts: T.AccountFacts,
        label: str,
        owner: str | None = None,
    ) -> None:
        owner = owner or self._owner(facts)
        self.items.append(PlannedWrite(kind, key, target, payload, old, owner, facts.id, label))

    def owners(self) -> set[str | None]:
        return (
            {i.owner_id for i in self.items}
            | {c.owner_id for c in self.conflicts}
            | {c[2].owner_id for c in self.creates}
        )

    def finish(self, owner_names: Mapping[str, str]) -> Plan:
        """Apply the per-owner cap on new tasks (most important first) and freeze the plan."""
        cap = self.settings.max_new_tasks_per_owner
        per_owner: dict[str | None, int] = defaultdict(int)
        creates: list[PlannedWrite] = []
        held: list[PlannedWrite] = []
        for _rank, _key, item in sorted(self.creates, key=lambda c: (c[0], c[1])):
            if per_owner[item.owner_id] < cap:
                per_owner[item.owner_id] += 1
                creates.append(item)
            else:
                held.append(item)
        if held:
            log.info(
                "new tasks held by the per-owner cap", extra={"crm": self.crm, "held": len(held)}
            )
        if self.fallback_accounts:
            accounts = sorted(self.fallback_accounts)
            log.warning(
                "accounts without an active owner: their tasks go to the owner with the most "
                "accounts; set [writeback] default_owner to choose who gets them",
                extra={"crm": self.crm, "owner_id": self.fallback_owner,
                       "accounts": len(accounts), "account_ids": accounts[:50]},
            )  # fmt: skip
        return Plan(
            crm=self.crm,
            as_of=self.as_of,
            items=tuple(self.items + creates),
            conflicts=tuple(self.conflicts),
            held=tuple(held),
            owner_names=dict(owner_names),
        )


def _kind_of_key(key: str) -> str | None:
    prefix = key.split(":", 1)[0]
    return T.HYGIENE if prefix == T.HYGIENE else T.rule_kind(prefix)


def _tier(result: AccountResult, row: AccountRow) -> Tier:
    tier = getattr(result, "tier", None) or getattr(getattr(result, "facts", None), "tier", None)
    if isinstance(tier, Tier):
        return tier
    if isinstance(tier, str) and tier in TIERS:
        return Tier(tier)
    raw = (row.tier_raw or "").strip().casefold()
    for t, values in (
        (Tier.STRATEGIC, ("strategic", "tier_1")),
        (Tier.GROWTH, ("growth", "tier_2")),
        (Tier.MAINTENANCE, ("maintenance", "tier_3")),
    ):
        if raw in values:
            return t
    return Tier.NONE


def _value(v: Any) -> Any:
    return v.value if isinstance(v, Enum) else v


def _one_line(text: str | None) -> str | None:
    line = " ".join((text or "").split())
    return line or None


def _one_line_or_text(text: str | None) -> str | None:
    return (text or "").strip() or None


def _within(text: str | None, limit: int) -> str | None:
    """A text field bounded to what every CRM's field holds (sync/tasks.py limits)."""
    return fit(text, limit) if text else text


# ---------------------------------------------------------------- mirror reads


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _name(first: str | None, last: str | None, cid: str) -> str:
    full = " ".join(p for p in (first, last) if p)
    return full or f"contact {cid}"


class MirrorReader:
    """The few mirror queries the planner needs, batched by account id."""

    def __init__(self, db: sqlite_utils.Database, crm: str) -> None:
        self.db = db
        self.crm = crm

    def _in(
        self, sql: str, ids: Sequence[str], extra: Sequence[Any] = ()
    ) -> Iterator[dict[str, Any]]:
        for chunk in _chunks(list(ids), CHUNK):
            marks = ",".join("?" * len(chunk))
            yield from self.db.query(sql.format(ids=marks), [self.crm, *extra, *chunk])

    def accounts(self, ids: Sequence[str]) -> dict[str, AccountRow]:
        sql = (
            "select id, name, owner_id, tier, deleted_at, owned from accounts "
            "where crm = ? and id in ({ids})"
        )
        return {
            r["id"]: AccountRow(
                id=r["id"],
                name=r["name"] or f"account {r['id']}",
                owner_id=r["owner_id"],
                tier_raw=r["tier"],
                deleted=r["deleted_at"] is not None,
                owned=_json(r["owned"]) or {},
            )
            for r in self._in(sql, ids)
        }

    def contacts_of(self, account_ids: Sequence[str]) -> dict[str, list[ContactRow]]:
        sql = (
            "select id, account_id, first_name, last_name, title, deleted_at, owned from contacts "
            "where crm = ? and account_id in ({ids}) order by account_id, id"
        )
        out: dict[str, list[ContactRow]] = defaultdict(list)
        for r in self._in(sql, account_ids):
            out[r["account_id"]].append(
                ContactRow(
                    id=r["id"],
                    account_id=r["account_id"],
                    name=_name(r["first_name"], r["last_name"], r["id"]),
                    title=r["title"],
                    deleted=r["deleted_at"] is not None,
                    owned=_json(r["owned"]) or {},
                )
            )
        return out

    def tasks(self) -> dict[str, list[TaskRow]]:
        """crmsync's tasks (the mirror's tasks table holds only those), by key."""
        out: dict[str, list[TaskRow]] = defaultdict(list)
        sql = (
            "select id, key, account_id, contact_id, owner_id, subject, body, status, priority, "
            "is_closed, deleted_at, owned from tasks where crm = ? and key is not null "
            "order by key, id"
        )
        for r in self.db.query(sql, [self.crm]):
            status = (r["status"] or "").strip().lower()
            closed = (
                bool(r["is_closed"])
                if r["is_closed"] is not None
                else status in ("completed", "complete")
            )
            out[r["key"]].append(
                TaskRow(
                    id=r["id"],
                    key=r["key"],
                    account_id=r["account_id"],
                    contact_id=r["contact_id"],
                    owner_id=r["owner_id"],
                    subject=r["subject"],
                    body=r["body"],
                    status=r["status"],
                    priority=r["priority"],
                    is_closed=closed,
                    deleted=r["deleted_at"] is not None,
                    owned=_json(r["owned"]) or {},
                )  # fmt: skip
            )
        return out

    def people(self, ids: Sequence[str]) -> dict[str, T.Person]:
        """Contacts by id wherever they are now (a champion who moved to another account)."""
        sql = (
            "select id, first_name, last_name, title from contacts where crm = ? and id in ({ids})"
        )
        return {
            r["id"]: T.Person(r["id"], _name(r["first_name"], r["last_name"], r["id"]), r["title"])
            for r in self._in(sql, ids)
        }

    def deleted_accounts(self, ids: Iterable[str]) -> set[str]:
        sql = "select id from accounts where crm = ? and deleted_at is not null and id in ({ids})"
        return {r["id"] for r in self._in(sql, sorted(i for i in ids if i))}

    def written(self, obj: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """What crmsync last wrote per field: {record id: {field: value}}."""
        from crmsync.state import outbox

        if not ids:
            return {}
        return outbox.written(self.db, self.crm, obj, ids)

    def owner_states(self) -> dict[str, bool]:
        """Owner id -> active, for every owner the mirror knows."""
        rows = self.db.query(
            "select id, active from owners where crm = ? and deleted_at is null", [self.crm]
        )
        return {r["id"]: r["active"] != 0 for r in rows}

    def inactive_owners(self) -> frozenset[str]:
        rows = self.db.query(
            "select id from owners where crm = ? and active = 0 and deleted_at is null", [self.crm]
        )
        return frozenset(r["id"] for r in rows)

    def owner_names(self, ids: Iterable[str]) -> dict[str, str]:
        sql = "select id, name from owners where crm = ? and id in ({ids})"
        return {r["id"]: r["name"] for r in self._in(sql, sorted(ids)) if r["name"]}


# ---------------------------------------------------------------- enqueue


_ENQUEUE_ORDER = {
    WriteKind.UPDATE_ACCOUNT: 0,
    WriteKind.UPDATE_CONTACT: 1,
    WriteKind.UPDATE_TASK: 2,
    WriteKind.COMPLETE_TASK: 3,
    WriteKind.CREATE_TASK: 4,
}


def enqueue(db: sqlite_utils.Database, plan: Plan) -> int:
    """Put the plan's items into the outbox (idempotent per key); return how many."""
    from crmsync.state import outbox

    # Same kinds side by side: batches are claimed in id order, and a batch of one
    # kind is one CRM call (a mixed batch costs a call per kind in it; docs/budgets.md).
    ordered = sorted(plan.items, key=lambda i: _ENQUEUE_ORDER[i.kind])
    intents = [
        outbox.Intent(plan.crm, item.kind, item.key, item.target_id, dict(item.payload))
        for item in ordered
    ]
    if not intents:
        return 0
    ids = outbox.enqueue_many(db, intents)
    queued = sum(1 for i in ids if i is not None)
    log.info("writes queued", extra={"crm": plan.crm, "queued": queued, "planned": len(intents)})
    return queued


def held_by_failures(db: sqlite_utils.Database, plan: Plan) -> list[PlannedWrite]:
    """The plan's writes that a dead outbox row with the same key holds back.

    The CRM refused the same write before and nothing changed since, so
    `enqueue` leaves the row dead rather than retry it every run (no retry
    storm); it stays planned, and unwritten, until someone requeues it
    (`crmsync outbox requeue`, or `crmsync setup` for a missing field).
    """
    from crmsync.state import outbox

    dead = outbox.dead_keys(db, plan.crm, [i.key for i in plan.items])
    return [i for i in plan.items if i.key in dead]


# ---------------------------------------------------------------- rendering


_VERBS = {
    WriteKind.CREATE_TASK: "create task",
    WriteKind.UPDATE_TASK: "update task",
    WriteKind.COMPLETE_TASK: "complete task",
    WriteKind.UPDATE_ACCOUNT: "account",
    WriteKind.UPDATE_CONTACT: "contact",
}
_ORDER = {
    WriteKind.CREATE_TASK: 0,
    WriteKind.UPDATE_TASK: 1,
    WriteKind.COMPLETE_TASK: 2,
    WriteKind.UPDATE_ACCOUNT: 3,
    WriteKind.UPDATE_CONTACT: 4,
}


LABEL_MAX = 120  # a record's name or a task's subject as the preview shows it
_HIDDEN = frozenset({"key", SIGNATURE})  # bookkeeping fields the preview does not show


def _show(value: Any, limit: int = 60) -> str:
    if value is None or value == "":
        return "(empty)"
    text = " ".join(str(_value(value)).split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def plan_lines(plan: Plan) -> list[str]:
    """The plan as plain text lines, per owner: tasks first, then field changes old -> new.

    Names, subjects and values come from the CRM: each line is printable text only
    (state/text.py), so no control sequence reaches the terminal."""
    return [printable(line) for line in _plan_lines(plan)]


def _plan_lines(plan: Plan) -> list[str]:
    c = plan.counts()
    lines = [
        f"{plan.crm}: {c['create_task']} task(s) to create, {c['update_task']} to update, "
        f"{c['complete_task']} to complete, {c['update_account']} account(s) and "
        f"{c['update_contact']} contact(s) to update; {c['conflicts']} conflict(s), "
        f"{c['held']} task(s) held for the next run."
    ]
    if plan.empty and not plan.conflicts and not plan.held:
        lines.append("  nothing to write: the CRM already holds every value.")
        return lines
    for owner, group in plan.by_owner().items():
        who = f"{group.owner_name} ({owner})" if group.owner_name else (owner or "no owner")
        lines.append(f"owner {who}:")
        for item in sorted(group.items, key=lambda i: (_ORDER[i.kind], i.label, i.key)):
            lines.extend(_item_lines(item))
        for h in group.held:
            lines.append(f"  held (cap reached): {_show(h.label, LABEL_MAX)}")
        for cf in group.conflicts:
            lines.append(
                f"  conflict: {cf.object[:-1]} {_show(cf.label, LABEL_MAX)} [{cf.record_id}] {cf.field}: "
                f"CRM has {_show(cf.crm_value)} ({conflict_source(cf)}); "
                f"left as is (crmsync wants {_show(cf.intended)})"
            )
    return lines


WHO_WORDS = {
    "person": "a person's value",
    "workflow": "set by a workflow",
    "integration": "set by another integration",
    "import": "set by an import",
    "crmsync": "written by crmsync before it signed its writes",
    "person or workflow": "set by a person or a workflow",
    "unknown": "set by someone else",
}


def conflict_source(cf: Any) -> str:
    """Who set a conflicting value and how it relates to crmsync's writes, in words."""
    who = getattr(cf, "who", None)
    words = WHO_WORDS.get(who or "", "not crmsync's")
    name = getattr(cf, "who_name", None)
    if who == "person" and name:
        words = f"set by {name}"
    if getattr(cf, "after_write", False):
        wrote = getattr(cf, "last_written", None)
        words += (
            f", replacing crmsync's {_show(wrote)}" if wrote is not None else ", replacing crmsync's value"
        )
    return words


def _item_lines(item: PlannedWrite) -> list[str]:
    verb = _VERBS[item.kind]
    if item.kind is WriteKind.CREATE_TASK:
        due = item.payload.get("due_date")
        prio = item.payload.get("priority")
        return [f"  {verb}: {_show(item.label, LABEL_MAX)} (due {due}, priority {prio})"]
    if item.kind is WriteKind.COMPLETE_TASK:
        return [f"  {verb}: {_show(item.label, LABEL_MAX)} [{item.target_id}]"]
    head = f"  {verb} {_show(item.label, LABEL_MAX)} [{item.target_id}]:"
    out = [head]
    for name, new in item.payload.items():
        if name in _HIDDEN:
            continue
        out.append(f"      {name}: {_show(item.old.get(name))} -> {_show(new)}")
    return out


def format_plan(plan: Plan) -> str:
    return "\n".join(plan_lines(plan))


def render_plan(plan: Plan) -> Any:
    """A rich renderable of the plan (one table per owner), for a terminal."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    def text(value: str, style: str = "") -> Text:  # CRM text: never markup, printable only
        return Text(printable(value, newlines=True), style=style)

    parts: list[Any] = [text(plan_lines(plan)[0], style="bold")]
    for owner, group in plan.by_owner().items():
        who = f"{group.owner_name} ({owner})" if group.owner_name else (owner or "no owner")
        table = Table(title=text(f"owner {who}"), title_justify="left", show_lines=False)
        table.add_column("what")
        table.add_column("record")
        table.add_column("change")
        for item in sorted(group.items, key=lambda i: (_ORDER[i.kind], i.label, i.key)):
            record = f"{_show(item.label, LABEL_MAX)} [{item.target_id or 'new'}]"
            table.add_row(text(_VERBS[item.kind]), text(record), text(_change_text(item)))
        for h in group.held:
            table.add_row(text("held"), text(_show(h.label, LABEL_MAX)), text("over the per-owner cap; next run"))
        for cf in group.conflicts:
            table.add_row(
                text("conflict"),
                text(f"{_show(cf.label, LABEL_MAX)} [{cf.record_id}]"),
                text(f"{cf.field}: CRM {_show(cf.crm_value)} ({conflict_source(cf)})"),
            )
        parts.append(table)
    return Group(*parts)


def _change_text(item: PlannedWrite) -> str:
    if item.kind is WriteKind.CREATE_TASK:
        return f"due {item.payload.get('due_date')}, priority {item.payload.get('priority')}"
    if item.kind is WriteKind.COMPLETE_TASK:
        return "status -> completed"
    return "\n".join(
        f"{k}: {_show(item.old.get(k), 30)} -> {_show(v, 30)}"
        for k, v in item.payload.items()
        if k not in _HIDDEN
    )
