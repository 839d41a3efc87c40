"""When a crmsync task opens, stays, reopens or completes.

One task per departed champion, one per single-threaded account, one per
account grouping its stale and bouncing contacts (what each says:
sync/tasks.py). Against what the CRM holds (the mirror's tasks, by key):

- wanted, none open, none ever: **open** (create), due per tier, priority per
  tier, owned by the account's owner (sync/owners.py);
- wanted and open: **stay**; updated when its subject, body, priority or owner
  changed (guarded like every owned field: sync/ownership.py); a second open
  task with the same key (left by an older crash) is completed as a duplicate;
- wanted, crmsync completed it (the signature, or the mirror's record of
  crmsync's writes, says crmsync wrote "completed"): **reopen**;
- wanted, but a person closed or deleted it: left alone;
- no longer wanted on an evaluated account (or its account was deleted):
  **complete**, with a line saying why (fixed, exempted by an account manager,
  or the record is gone).

Whether a task is closed is decided once, when the mirror is read
(state/writeback.py `is_closed`); here a task is open when it is neither closed
nor deleted (`is_open`). Pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any, Protocol

from crmsync.state.model import (
    Flag,
    HygieneStatus,
    ObjectType,
    Severity,
    TaskKey,
    Tier,
    Write,
    WriteKind,
)
from crmsync.state.writeback import TaskRow

from . import ownership
from . import tasks as T
from .owners import Owners
from .ownership import SIGNATURE, Conflict, Guard, Where
from .writeback_settings import WritebackSettings


class Findings(Protocol):
    """What the rules found on one account, as far as the task lifecycle reads it."""

    @property
    def flags(self) -> Sequence[Flag]: ...

    @property
    def contact_status(self) -> Mapping[str, tuple[HygieneStatus, str]]: ...


def due_date(as_of: datetime, tier: Tier, due_days: Mapping[str, int]) -> date:
    """When a new (or reopened) task is due: `[writeback] due_days` for the account's tier."""
    return as_of.date() + timedelta(days=int(due_days.get(tier.value, due_days.get("none", 10))))


def priority(tier: Tier, priorities: Mapping[str, str]) -> str:
    """A task's priority: `[writeback] priority` for the account's tier."""
    return str(priorities.get(tier.value, priorities.get("none", "normal")))


def is_open(task: TaskRow) -> bool:
    """Open in the CRM: neither closed (state/writeback.py decides) nor deleted."""
    return not task.is_closed and not task.deleted


class TaskLifecycle:
    """Collects the tasks the accounts want (`want`), then settles them against the CRM's."""

    def __init__(
        self,
        crm: str,
        settings: WritebackSettings,
        as_of: datetime,
        owners: Owners,
        guard: Guard,
    ) -> None:
        self.crm = crm
        self.settings = settings
        self.as_of = as_of
        self.owners = owners
        self.guard = guard
        self.desired: dict[str, tuple[T.TaskContent, T.AccountFacts]] = {}
        self.exempted: set[str] = set()  # keys of flags an account manager exempted
        self.items: list[Write] = []  # updates, reopens and completions
        self.conflicts: list[Conflict] = []
        self.creates: list[tuple[int, str, Write]] = []  # (rank, key, write): capped later

    # -------------------------------------------------------- what the accounts want

    def want(
        self, result: Findings, facts: T.AccountFacts, people: Mapping[str, T.Person]
    ) -> None:
        """The tasks one account's findings call for."""
        self.exempted.update(f.key for f in result.flags or () if f.suppressed)
        # Notes (severity info: a role address, a single soft bounce) inform; they are not
        # problems for an owner's queue, and the contact's own status stays ok.
        flags = [
            f for f in result.flags or () if not f.suppressed and _value(f.severity) != _INFO
        ]  # fmt: skip
        statuses = result.contact_status or {}
        departed = {f.contact_id or f.subject_id for f in flags if f.rule == T.DEPARTED}
        hygiene: dict[str, tuple[str, str]] = {}  # contact id -> (kind, reason); bouncing wins
        for flag in sorted(flags, key=lambda f: f.key):
            kind = flag.rule
            cid = flag.contact_id or flag.subject_id
            if kind == T.DEPARTED:
                self._want(T.departed_task(flag, facts, people.get(cid)), facts)
            elif kind == T.SINGLE_THREADED:
                self._want(T.single_threaded_task(flag, facts), facts)
            elif kind in (T.STALE, T.BOUNCING) and cid not in departed:
                if hygiene.get(cid, ("",))[0] == T.BOUNCING:
                    continue
                status, reason = statuses.get(cid, (None, ""))
                same_kind = _value(status) == (_BOUNCING if kind == T.BOUNCING else _STALE)
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

    # -------------------------------------------------------- against the CRM's tasks

    def settle(
        self,
        rows: Mapping[str, Sequence[TaskRow]],
        written: Mapping[str, Mapping[str, Any]],
        evaluated: Collection[str],
        gone_accounts: Collection[str],
    ) -> None:
        """Create, update, reopen or complete crmsync's tasks against what the CRM holds."""
        for key in sorted(set(self.desired) | set(rows)):
            existing = list(rows.get(key, ()))  # deleted ones too: a person removed it
            open_ = sorted((t for t in existing if is_open(t)), key=lambda t: t.id)
            want = self.desired.get(key)
            if want is not None:
                self._wanted(want, open_, existing, written)
                continue
            parsed = TaskKey.parse(key)
            account_id = parsed.account_id if parsed else (open_[0].account_id if open_ else None)
            if account_id in evaluated or account_id in gone_accounts:
                for task in open_:
                    self._complete(task, account_id or "", gone=account_id in gone_accounts,
                                   written=written.get(task.id, {}))  # fmt: skip

    def forget(self) -> None:
        """Drop what was wanted and settled (a chunk of accounts is done: sync/plan.py)."""
        self.desired.clear()
        self.exempted.clear()
        self.items, self.conflicts, self.creates = [], [], []

    def _wanted(
        self,
        want: tuple[T.TaskContent, T.AccountFacts],
        open_: Sequence[TaskRow],
        existing: Sequence[TaskRow],
        written: Mapping[str, Mapping[str, Any]],
    ) -> None:
        content, facts = want
        owner = self.owners.of(facts.id, facts.owner_id, task=True)
        prio = priority(facts.tier, self.settings.priority)
        if open_:
            self._update(content, facts, open_[0], owner, prio, written.get(open_[0].id, {}))
            for dup in open_[1:]:  # a duplicate from an older crash: close it
                self._complete(dup, facts.id, duplicate=True, written=written.get(dup.id, {}))
            return
        ours = [
            t
            for t in existing
            if not t.deleted
            and ownership.canon("status", t.status) == "completed"
            and self.guard.record(ObjectType.TASK.value, t.id, written.get(t.id, {}), t.current())
            .wrote("status", t.status)
        ]
        if ours:
            self._reopen(content, facts, sorted(ours, key=lambda t: t.id)[0], owner, prio,
                         written)  # fmt: skip
            return
        if existing:  # closed or deleted by a person while the problem persists: respect it
            return
        self._create(content, facts, owner, prio)

    def _create(
        self, content: T.TaskContent, facts: T.AccountFacts, owner: str | None, prio: str
    ) -> None:
        payload: dict[str, Any] = {
            "key": content.key,
            "subject": content.subject,
            "body": content.body,
            "status": T.STATUS_OPEN,
            "priority": prio,
            "due_date": due_date(self.as_of, facts.tier, self.settings.due_days).isoformat(),
            "account_id": content.account_id,
        }
        if content.contact_id:
            payload["contact_id"] = content.contact_id
        if owner:
            payload["owner_id"] = owner
        payload[SIGNATURE] = ownership.sign(ObjectType.TASK.value, payload)
        write = Write(WriteKind.CREATE_TASK, content.key, None, payload, {}, owner, facts.id,
                      content.subject)  # fmt: skip
        self.creates.append((content.rank, content.key, write))

    def _reopen(
        self,
        content: T.TaskContent,
        facts: T.AccountFacts,
        task: TaskRow,
        owner: str | None,
        prio: str,
        written: Mapping[str, Mapping[str, Any]],
    ) -> None:
        payload: dict[str, Any] = {
            "key": content.key, "status": T.STATUS_OPEN, "subject": content.subject,
            "body": content.body, "priority": prio,
            "due_date": due_date(self.as_of, facts.tier, self.settings.due_days).isoformat(),
        }  # fmt: skip
        if owner:
            payload["owner_id"] = owner
        own = self.guard.record(ObjectType.TASK.value, task.id, written.get(task.id, {}),
                                task.current())  # fmt: skip
        payload[SIGNATURE] = own.after(ObjectType.TASK.value, task.current(), payload)
        old = {"status": task.status, "subject": task.subject}
        self.items.append(
            Write(WriteKind.UPDATE_TASK, f"update_task:{content.key}", task.id, payload, old,
                  owner or self.owners.of(facts.id, facts.owner_id), facts.id, content.subject)
        )  # fmt: skip

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
        whose = task.owner_id or owner or self.owners.of(facts.id, facts.owner_id)
        where = Where(facts.id, whose, content.subject)
        d = self.guard.diff(ObjectType.TASK.value, task.id, intended, task.current(), written,
                            where)  # fmt: skip
        self.conflicts.extend(d.conflicts)
        if d.payload:
            payload = {**d.payload, "key": content.key}
            self.items.append(
                Write(WriteKind.UPDATE_TASK, f"update_task:{content.key}", task.id, payload,
                      d.old, whose, facts.id, content.subject)  # fmt: skip
            )

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
            note = T.completion_note_duplicate(self.as_of)
        elif gone:
            note = T.completion_note_gone(self.as_of)
        elif task.key in self.exempted:
            note = T.completion_note_exempted(self.as_of)
        else:
            parsed = TaskKey.parse(task.key)
            note = T.completion_note(parsed.kind if parsed else None, self.as_of)
        payload: dict[str, Any] = {
            "key": task.key, "status": T.STATUS_COMPLETED, "body": T.with_note(task.body, note),
        }  # fmt: skip
        mine = {} if written is None else written
        own = self.guard.record(ObjectType.TASK.value, task.id, mine, task.current())
        payload[SIGNATURE] = own.after(ObjectType.TASK.value, task.current(), payload)
        key = f"complete_task:{task.key}" + (f":{task.id}" if duplicate else "")
        self.items.append(
            Write(WriteKind.COMPLETE_TASK, key, task.id, payload, {"status": task.status},
                  task.owner_id, account_id, task.subject or task.key)  # fmt: skip
        )


_INFO = Severity.INFO.value
_BOUNCING, _STALE = HygieneStatus.BOUNCING.value, HygieneStatus.STALE.value


def _value(v: Any) -> Any:
    return v.value if isinstance(v, Enum) else v
