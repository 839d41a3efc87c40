"""Plan the write-back: from the rules' results and what the CRM holds, the writes to make.

Decide, then act: `decide()` is a pure function from the evaluated accounts and
what the CRM holds (as the mirror last saw it) to one `Plan` of typed writes
(`state.model.Write`); `plan()` reads those inputs from the mirror
(state/writeback.py) and decides the same way. The outbox queues the same writes
(`enqueue`) and the drain sends them (sync/drain.py). A run does it a chunk of
accounts at a time (`Planner`, fed by sync/evaluate.py): each chunk's writes go
into the outbox as they are decided, in the transaction that stores the flags
(RELIABILITY O8), and its Plan keeps counts per owner and the conflicts, not the
writes; memory does not grow with the org. What needs every chunk waits small:
the task creates in a temporary table until the per-owner cap ranks them
(`Decider.finish`), and which crmsync task keys are settled with which account
(state/writeback.py `Reader.index_tasks`).

For each evaluated account `decide()` works out what the CRM *should* hold in the
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
  owns the most accounts, with a warning naming the accounts when they join that list,
  once, not at every run: state/owner_fallback.py): one per departed
  champion, one per single-threaded account, one per account grouping its
  stale and bouncing contacts (text: sync/tasks.py; when each opens, stays,
  reopens or completes: sync/lifecycle.py). An open task with the
  same key is updated when its content changed, never duplicated; the task
  of a problem that went away is completed with a line saying why; a task
  crmsync completed is reopened if the problem comes back; a task a person
  closed is left closed. At most `max_new_tasks_per_owner` tasks are created
  per owner per run; the rest are held for the next run.

Ownership guard (W8, docs/ownership.md; the rule and the field diffs in sync/ownership.py). crmsync
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

`enqueue(db, plan)` and a run's `Planner` put the writes into the outbox with
stable idempotency keys built from account/contact ids and flag keys (never
timestamps):
`update_account:<crm>:<id>`, `update_contact:<crm>:<id>`, `update_task:<task key>`,
`complete_task:<task key>`, and for a create the task key itself
(`<rule>:<crm>:<account>:<subject>`, `contact_hygiene:<crm>:<account>:<account>`),
which is also `payload["key"]`, the value stamped on the task in the CRM.
sync/preview.py shows a plan per owner for `--dry-run` and `crmsync plan`: a
preview keeps every write (it prints them all) and stores nothing.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import sqlite_utils

from crmsync.state import conflicts as conflict_store
from crmsync.state import dirty, outbox, owner_fallback, views
from crmsync.state.model import (
    AccountView,
    Contact,
    Coverage,
    Flag,
    HygieneStatus,
    ObjectType,
    Tier,
    Write,
    WriteKind,
)
from crmsync.state.outbox import KIND_OBJECT
from crmsync.state.writeback import CHUNK, AccountRow, ContactRow, Reader, TaskRow, chunks

from . import ownership
from . import tasks as T
from .lifecycle import TaskLifecycle
from .owners import Owners
from .ownership import Conflict, Guard, Where
from .writeback_settings import WritebackSettings

log = logging.getLogger(__name__)


class AccountResult(Protocol):
    """What rules.evaluate_account returns, as far as the planner reads it."""

    @property
    def flags(self) -> Sequence[Flag]: ...

    @property
    def coverage(self) -> Coverage | None: ...

    @property
    def contact_status(self) -> Mapping[str, tuple[HygieneStatus, str]]: ...

    @property
    def hygiene_summary(self) -> str | None: ...  # the account's summary line; else coverage's

    @property
    def tier(self) -> Tier: ...  # the account's tier under [rules.tiers]


# ---------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Plan:
    """What a run planned. A planner that keeps its writes (`decide`, `plan`, a preview) has
    them all in `items` and `held`; a run that stores streamed them into the outbox chunk by
    chunk (`Planner` with `queue`) and keeps only the counts, per owner (`per_owner`: writes
    per kind and "held", the task creates over the per-owner cap), and the conflicts."""

    crm: str
    as_of: datetime
    items: tuple[Write, ...] = ()  # kept: every write; streamed into the outbox: none
    conflicts: tuple[Conflict, ...] = ()
    held: tuple[Write, ...] = ()  # task creates over the per-owner cap (kept plans only)
    owner_names: Mapping[str, str] = field(default_factory=dict)
    per_owner: Mapping[str | None, Mapping[str, int]] = field(default_factory=dict)
    kept: bool = True  # items and held hold every write
    # (object, record id, field) of open conflicts handed back that a write of the plan writes
    handed_back_written: frozenset[tuple[str, str, str]] = frozenset()
    queued: int = 0  # outbox rows the plan added or changed (a run that stores)
    held_by_dead_rows: int = 0  # planned writes a dead outbox row (same key) holds back
    fallback_owner: str | None = None  # who got the tasks of accounts without an active owner
    fallback_accounts: frozenset[str] = frozenset()  # those accounts (the ones planned)

    @property
    def empty(self) -> bool:
        return not self.planned

    @property
    def planned(self) -> int:
        """Writes planned (task creates held by the cap not counted)."""
        return sum(n for c in self.per_owner.values() for k, n in c.items() if k != "held")

    def counts(self) -> dict[str, int]:
        out = {k.value: 0 for k in WriteKind}
        out["conflicts"] = len(self.conflicts)
        out["held"] = 0
        for c in self.per_owner.values():
            for k, n in c.items():
                out[k] += n
        return out

    def by_owner(self) -> dict[str | None, OwnerPlan]:
        """Counts, items (kept plans), conflicts and held tasks per owner, owners in id order
        (None last)."""
        groups: dict[str | None, OwnerPlan] = {}

        def group(owner: str | None) -> OwnerPlan:
            if owner not in groups:
                groups[owner] = OwnerPlan(owner, self.owner_names.get(owner or ""))
            return groups[owner]

        for owner, c in self.per_owner.items():
            group(owner).counts.update({k: n for k, n in c.items() if n})
        for item in self.items:
            group(item.owner_id).items.append(item)
        for cf in self.conflicts:
            group(cf.owner_id).conflicts.append(cf)
        for h in self.held:
            group(h.owner_id).held.append(h)
        order = sorted(groups, key=lambda o: (o is None, o or ""))
        return {o: groups[o] for o in order}


@dataclass
class OwnerPlan:
    owner_id: str | None
    owner_name: str | None
    items: list[Write] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    held: list[Write] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)  # writes per kind, and "held"


# ---------------------------------------------------------------- what decide() reads


@dataclass(frozen=True)
class AccountInput:
    """One evaluated account with what the CRM holds for it."""

    row: AccountRow
    result: AccountResult
    contacts: Sequence[ContactRow | Contact] = ()  # a view's contacts are live
    written: Mapping[str, Any] = field(default_factory=dict)  # crmsync's last account values
    written_contacts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    people: Mapping[str, T.Person] = field(default_factory=dict)  # contacts the flags name


@dataclass(frozen=True)
class CrmHeld:
    """What the CRM holds besides the accounts: crmsync's tasks and the owners."""

    tasks: Mapping[str, Sequence[TaskRow]] = field(default_factory=dict)  # by task key
    task_written: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    gone_accounts: Collection[str] = frozenset()  # deleted accounts that still have tasks
    owner_active: Mapping[str, bool] = field(default_factory=dict)
    inactive_owners: frozenset[str] = frozenset()
    fallback_owner: str | None = None  # the active owner with the most accounts
    owner_names: Mapping[str, str] = field(default_factory=dict)
    handed_back: Mapping[tuple[str, str], Collection[str]] = field(default_factory=dict)


# ---------------------------------------------------------------- decide()


def decide(
    crm: str,
    accounts: Iterable[AccountInput],
    held: CrmHeld,
    settings: WritebackSettings,
    *,
    as_of: datetime,
    evaluated: Collection[str],
) -> Plan:
    """The writes that bring `crm` in line with the rules' results (see the module docstring).

    `accounts` are the evaluated accounts the CRM still holds, in id order;
    `evaluated` every account id the rules looked at (a deleted one included):
    their crmsync tasks that no finding wants any more are completed. Pure.
    """
    decider = Decider(crm, held, settings, as_of=as_of)
    for account in accounts:
        decider.account(account)
    decider.settle(held.tasks, held.task_written, evaluated, held.gone_accounts)
    decider.take()
    return decider.finish()


class Creates(Protocol):
    """Where a Decider keeps the task creates until the per-owner cap ranks them all."""

    def add(self, creates: Iterable[tuple[int, str, Write]]) -> None: ...

    def ranked(self) -> Iterator[Write]: ...  # by (rank, key)


class _InMemory:
    def __init__(self) -> None:
        self.creates: list[tuple[int, str, Write]] = []

    def add(self, creates: Iterable[tuple[int, str, Write]]) -> None:
        self.creates.extend(creates)

    def ranked(self) -> Iterator[Write]:
        return (w for _rank, _key, w in sorted(self.creates, key=lambda c: (c[0], c[1])))


class Decider:
    """`decide()` a chunk of accounts at a time: `account` for each, in id order, `settle` the
    chunk's crmsync tasks, `take` the chunk's writes; then `finish`.

    What it keeps between chunks is small: counts per owner and kind, the conflicts,
    the owners' state, and (in `creates`) the task creates the per-owner cap ranks at the
    end. With `keep` it also keeps every write (`decide`, a preview), and `finish` gives
    them in the Plan. Pure, like `decide`, but for the `creates` it is given.
    """

    def __init__(
        self,
        crm: str,
        held: CrmHeld,
        settings: WritebackSettings,
        *,
        as_of: datetime,
        keep: bool = True,
        creates: Creates | None = None,
    ) -> None:
        self.crm, self.held, self.settings, self.as_of = crm, held, settings, as_of
        self.owners = Owners(
            settings.default_owner.get(crm), held.owner_active, held.inactive_owners,
            held.fallback_owner,
        )  # fmt: skip
        self.guard = Guard(held.handed_back, settings.ownership_guard)
        self.lifecycle = TaskLifecycle(crm, settings, as_of, self.owners, self.guard)
        self.keep = keep
        self.creates: Creates = creates if creates is not None else _InMemory()
        self.fresh: list[Write] = []  # decided since the last `take`
        self.items: list[Write] = []  # every write taken (with `keep`)
        self.conflicts: list[Conflict] = []
        self.per_owner: dict[str | None, Counter[str]] = defaultdict(Counter)
        self.handed_back_written: set[tuple[str, str, str]] = set()

    def account(self, account: AccountInput) -> None:
        crm, owners = self.crm, self.owners
        facts = _facts(crm, account.row, account.result)
        where = Where(facts.id, owners.of(facts.id, facts.owner_id), account.row.name)
        _fields(crm, account, self.guard, where, self.fresh, self.conflicts)
        if self.settings.tasks:
            self.lifecycle.want(account.result, facts, account.people)

    def settle(
        self,
        tasks: Mapping[str, Sequence[TaskRow]],
        task_written: Mapping[str, Mapping[str, Any]],
        evaluated: Collection[str],
        gone_accounts: Collection[str],
    ) -> None:
        """The tasks the accounts since the last `settle` want against crmsync's tasks of
        those accounts (and of `gone_accounts`, deleted): updates, reopens and completions
        join the writes to take; creates wait in `creates` for the cap."""
        lifecycle = self.lifecycle
        lifecycle.settle(tasks, task_written, evaluated, gone_accounts)
        self.fresh += lifecycle.items
        self.conflicts += lifecycle.conflicts
        self.creates.add(lifecycle.creates)
        lifecycle.forget()

    def take(self) -> list[Write]:
        """The writes decided since the last `take` (counted; kept with `keep`)."""
        fresh, self.fresh = self.fresh, []
        for item in fresh:
            self._count(item)
        if self.keep:
            self.items += fresh
        return fresh

    def _count(self, item: Write, kind: str | None = None) -> None:
        self.per_owner[item.owner_id][kind or item.kind.value] += 1
        if kind is None and item.target_id:
            mine = self.held.handed_back.get((KIND_OBJECT[item.kind].value, item.target_id))
            if mine:
                obj = KIND_OBJECT[item.kind].value
                self.handed_back_written.update(
                    (obj, item.target_id, name) for name in item.payload if name in mine
                )

    def finish(
        self,
        emit: Callable[[list[Write]], None] = lambda _writes: None,
        hold: Callable[[list[str]], None] = lambda _accounts: None,
    ) -> Plan:
        """Cap the task creates per owner, most important first (the created ones go to
        `emit`, a chunk at a time, after every other write; the accounts of those the cap
        held to `hold`, a chunk at a time, maybe one more than once), and give the Plan."""
        crm, held, owners = self.crm, self.held, self.owners
        cap = self.settings.max_new_tasks_per_owner
        per_owner: dict[str | None, int] = defaultdict(int)
        made: list[Write] = []
        capped: list[Write] = []
        capped_accounts: list[str] = []
        n_capped = 0
        for item in self.creates.ranked():
            if per_owner[item.owner_id] < cap:
                per_owner[item.owner_id] += 1
                made.append(item)
                if len(made) >= CHUNK:
                    self._made(made, emit)
                    made = []
            else:
                n_capped += 1
                self._count(item, "held")
                if item.account_id:
                    capped_accounts.append(item.account_id)
                    if len(capped_accounts) >= CHUNK:
                        hold(capped_accounts)
                        capped_accounts = []
                if self.keep:
                    capped.append(item)
        self._made(made, emit)
        if capped_accounts:
            hold(capped_accounts)
        if n_capped:
            log.info("new tasks held by the per-owner cap", extra={"crm": crm, "held": n_capped})
        used = set(self.per_owner) | {c.owner_id for c in self.conflicts}
        return Plan(
            crm=crm,
            as_of=self.as_of,
            items=tuple(self.items),
            conflicts=tuple(self.conflicts),
            held=tuple(capped),
            owner_names={o: n for o, n in held.owner_names.items() if o in used},
            per_owner={o: dict(c) for o, c in sorted(self.per_owner.items(),
                                                     key=lambda kv: (kv[0] is None, kv[0] or ""))},
            kept=self.keep,
            handed_back_written=frozenset(self.handed_back_written),
            fallback_owner=owners.fallback if owners.fallback_accounts else None,
            fallback_accounts=frozenset(owners.fallback_accounts),
        )  # fmt: skip

    def _made(self, made: list[Write], emit: Callable[[list[Write]], None]) -> None:
        if made:
            self.fresh += made
            emit(self.take())


def _fields(
    crm: str,
    account: AccountInput,
    guard: Guard,
    where: Where,
    items: list[Write],
    conflicts: list[Conflict],
) -> None:
    """The account's and its contacts' owned fields (sync/ownership.py)."""
    result, row = account.result, account.row
    if result.coverage is not None:
        intended = ownership.account_values(result.coverage, result.hygiene_summary)
        write, held = ownership.account_write(crm, row, intended, account.written, guard, where)
        conflicts.extend(held)
        if write is not None:
            items.append(write)
    statuses = result.contact_status or {}
    written = account.written_contacts
    for contact in account.contacts:
        if isinstance(contact, ContactRow) and contact.deleted:
            continue
        status, reason = statuses.get(contact.id, _NOT_FLAGGED)
        write, held = ownership.contact_write(crm, contact, status, reason, written, guard, where)
        conflicts.extend(held)
        if write is not None:
            items.append(write)


_NOT_FLAGGED = (HygieneStatus.OK.value, "")


def _facts(crm: str, row: AccountRow, result: AccountResult) -> T.AccountFacts:
    cov = result.coverage
    return T.AccountFacts(
        crm=crm,
        id=row.id,
        name=row.name,
        tier=result.tier,
        owner_id=row.owner_id,
        stakeholders=cov.stakeholders if cov else None,
        engaged=cov.engaged if cov else None,
        roles_covered=tuple(cov.roles_covered) if cov else (),
    )


# ---------------------------------------------------------------- plan(): read, then decide


def plan(
    db: sqlite_utils.Database,
    crm: str,
    results_by_account: Mapping[str, AccountResult],
    settings: WritebackSettings,
    *,
    as_of: datetime,
) -> Plan:
    """Read what the CRM holds from the mirror for these accounts, then `decide`.

    `results_by_account` maps account id -> that account's rules result. Only
    those accounts (and their contacts and crmsync tasks) are considered, plus
    open crmsync tasks whose account was deleted from the CRM (completed).
    Reads the mirror in batches of accounts; writes nothing (`enqueue` queues the Plan).
    """
    planner = Planner(db, crm, settings, as_of=as_of)
    planner.add(results_by_account)
    return planner.finish()


class Planner:
    """`plan()` fed a chunk of evaluated accounts at a time (sync/evaluate.py streams them).

    `add` each chunk's results as the rules produce them, chunks in account id
    order; `finish` gives the same writes as `plan()` over all of them at once. Per chunk
    it reads what the CRM holds for the chunk's accounts (their views, crmsync's last
    writes, crmsync's tasks of those accounts: state/writeback.py `Reader.tasks_of`),
    decides, and drops the chunk. At `finish`, the tasks of deleted accounts no chunk
    had are completed, then the task creates are capped per owner (they wait in a
    temporary table, state/outbox.py `StagedCreates`).

    With `queue` (a run that stores), each chunk's writes go into the outbox as they
    are decided (`outbox.enqueue_many`, in the caller's transaction: the flags and the
    writes are stored together or not at all). `keep` (by default: without `queue`,
    as `plan()` and a preview, which prints them) keeps every write in the Plan;
    without it the Plan keeps counts only, and memory holds one chunk, the conflicts
    and counters per owner.
    """

    def __init__(
        self,
        db: sqlite_utils.Database,
        crm: str,
        settings: WritebackSettings,
        *,
        as_of: datetime,
        queue: bool = False,
        keep: bool | None = None,
        accounts: Sequence[str] | None = None,
        remember: bool = False,
    ) -> None:
        """`accounts`: the only accounts that will be added (a run evaluating what changed,
        state/dirty.py; deleted ones among them have their tasks settled); None: any.
        `remember` (a run that stores): note which accounts' tasks went to the fallback
        owner, so the next run warns only about what changed (state/owner_fallback.py), and
        list the accounts whose task creates the cap held for the next run (state/dirty.py)."""
        self.db, self.queue, self.remember = db, queue, remember
        self.accounts = accounts
        self.store = store = Reader(db, crm)
        store.index_tasks(accounts)
        self.held = CrmHeld(
            owner_active=store.owner_states(),
            inactive_owners=store.inactive_owners(),
            fallback_owner=views.owner_with_most_accounts(db, crm),
            owner_names=store.all_owner_names(),
            handed_back=conflict_store.handed_back(db, crm),
        )
        keep = not queue if keep is None else keep
        self.decider = Decider(crm, self.held, settings, as_of=as_of, keep=keep,
                               creates=outbox.StagedCreates(db))  # fmt: skip
        self.queued = 0
        self.dead = 0

    def add(
        self,
        results_by_account: Mapping[str, AccountResult],
        views_by_account: Mapping[str, AccountView] | None = None,
    ) -> None:
        """One chunk of evaluated accounts (ids after those of every chunk before), with the
        views the rules read (sync/evaluate.py); without them (`plan()`), the views are read
        from the mirror CHUNK accounts at a time."""
        chunks_of: Iterable[tuple[Mapping[str, AccountResult], Mapping[str, AccountView]]]
        if views_by_account is None:
            chunks_of = (
                ({k: results_by_account[k] for k in ids}, _views(self.db, self.store.crm, ids))
                for ids in chunks(sorted(results_by_account), CHUNK)
            )
        else:
            chunks_of = [(results_by_account, views_by_account)]
        for results, seen in chunks_of:
            for account in _from_views(self.db, self.store, results, seen):
                self.decider.account(account)
            self._settle(list(results), evaluated=results.keys(), gone=())

    def _settle(self, accounts: Sequence[str], *, evaluated: Collection[str],
                gone: Collection[str]) -> None:  # fmt: skip
        tasks = self.store.tasks_of(accounts)
        written = outbox.LastWrites(
            self.db, self.store.crm, ObjectType.TASK, [t.id for ts in tasks.values() for t in ts]
        )
        self.decider.settle(tasks, written, evaluated, gone)
        self._emit(self.decider.take())

    def _emit(self, writes: list[Write]) -> None:
        """A chunk's writes: queued (with `queue`); those a dead row holds back counted."""
        if not writes:
            return
        crm = self.store.crm
        if self.queue:
            self.queued += _queue(self.db, crm, writes)
        self.dead += len(outbox.dead_keys(self.db, crm, [i.key for i in writes]))

    def finish(self) -> Plan:
        gone = self.store.deleted_accounts_with_tasks()
        if gone:
            self._settle(gone, evaluated=(), gone=frozenset(gone))
        plan = self.decider.finish(self._emit, self._hold)
        self._fallback_warning(plan)
        if self.queue:
            log.info("writes queued", extra={"crm": plan.crm, "queued": self.queued,
                                             "planned": plan.planned})  # fmt: skip
        return dataclasses.replace(plan, queued=self.queued, held_by_dead_rows=self.dead)

    def _hold(self, accounts: list[str]) -> None:
        """Accounts whose task creates the cap held: a run that stores evaluates them again
        next run, as a full evaluation would (sync/evaluate.py)."""
        if self.remember:
            dirty.touch(self.db, self.store.crm, accounts)

    def _fallback_warning(self, plan: Plan) -> None:
        """Warn about the accounts whose tasks newly go to the fallback owner (or to a new
        one); a run that stores notes them, so the next run does not warn again."""
        crm, owner = plan.crm, plan.fallback_owner
        new = owner_fallback.new(self.db, crm, owner, plan.fallback_accounts)
        if self.remember:
            owner_fallback.note(self.db, crm, owner, plan.fallback_accounts, planned=self.accounts)
        if new:
            log.warning(
                "accounts without an active owner: their tasks go to the owner with the most "
                "accounts; set [writeback] default_owner to choose who gets them "
                "(`crmsync status` counts their open tasks; this is not repeated until the "
                "list changes)",
                extra={"crm": crm, "owner_id": owner, "accounts": len(new),
                       "account_ids": new[:50]},
            )  # fmt: skip


def _views(db: sqlite_utils.Database, crm: str, ids: Sequence[str]) -> dict[str, AccountView]:
    """The live accounts among `ids`, as the rules read them."""
    return {v.id: v for v in views.iter_account_views(db, crm, account_ids=ids)}


def _from_views(
    db: sqlite_utils.Database,
    store: Reader,
    results: Mapping[str, AccountResult],
    views_by_account: Mapping[str, AccountView],
) -> Iterator[AccountInput]:
    """The evaluated accounts that have a view (live accounts), in id order, with what the
    CRM holds from the views (live contacts with crmsync's fields as the CRM holds them);
    only crmsync's last writes (the outbox's `LastWrites`: a record's values when the diff
    looks into them) and people a flag names who are neither at the account nor former
    contacts of it are read."""
    crm = store.crm
    ids = sorted(a for a in results if a in views_by_account)
    written = outbox.LastWrites(db, crm, ObjectType.ACCOUNT, ids)
    contact_ids = [c.id for a in ids for c in views_by_account[a].contacts]
    written_contacts = outbox.LastWrites(db, crm, ObjectType.CONTACT, contact_ids)
    flagged = {f.contact_id or f.subject_id for a in ids for f in results[a].flags or ()}
    people = {
        c.id: T.Person(c.id, c.name, c.title)
        for a in ids
        for c in (*views_by_account[a].former_contacts, *views_by_account[a].contacts)
        if c.id in flagged
    }
    for named in store.people(sorted(flagged - set(people))).values():
        people[named.id] = T.Person(named.id, named.name, named.title)
    for account_id in ids:
        view = views_by_account[account_id]
        account = view.account
        row = AccountRow(
            id=account.id,
            name=account.name or f"account {account.id}",
            owner_id=account.owner_id,
            deleted=False,  # views hold live accounts only
            owned=account.owned,
        )
        contacts = sorted(view.contacts, key=lambda c: c.id)  # live, crmsync's fields in `owned`
        yield AccountInput(row, results[account_id], contacts,
                           written.get(account_id, {}), written_contacts, people)  # fmt: skip


# ---------------------------------------------------------------- enqueue


def enqueue(db: sqlite_utils.Database, plan: Plan) -> int:
    """Put a kept plan's items into the outbox (idempotent per key); return how many.
    A run queues its writes chunk by chunk instead (`Planner` with `queue`)."""
    if not plan.items:
        return 0
    queued = _queue(db, plan.crm, plan.items)
    log.info("writes queued", extra={"crm": plan.crm, "queued": queued, "planned": len(plan.items)})
    return queued


def _queue(db: sqlite_utils.Database, crm: str, writes: Sequence[Write]) -> int:
    """Queue `writes`, same kinds side by side (the drain sends a kind at a time too,
    `outbox.ready_ids`: a batch of one kind is one CRM call, a mixed batch a call per kind
    in it; docs/budgets.md); return how many rows were added or changed."""
    ordered = sorted(writes, key=lambda i: outbox.KIND_ORDER[i.kind])
    return sum(1 for i in outbox.enqueue_many(db, crm, ordered) if i is not None)
