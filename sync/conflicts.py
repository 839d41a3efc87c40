"""The conflict lifecycle: what a run records, logs once and explains; `crmsync conflicts`.

A conflict is a value in a field crmsync writes that is not crmsync's
(sync/ownership.py): the planner leaves it alone and lists it in the plan.
`track()` keeps the list in the mirror (state/conflicts.py), one row per
(CRM, object, record, field):

- a conflict seen for the first time, or whose CRM value changed since, is
  *new*: it is logged once (WARNING, with ids, field and who; never values),
  and on HubSpot its records' property history says who set the value (a
  person, named when the mirror knows the user; a workflow; an import;
  another integration). Salesforce keeps no field history by default, so
  there it reads "a person or a workflow";
- a conflict seen again unchanged is only stamped `last_seen`;
- an open conflict the plan no longer has is resolved: the CRM now holds what
  crmsync wants, or the field was blanked and crmsync writes it. A field
  handed back (`crmsync conflicts handback`) stays open until crmsync's
  write lands (`settle()` after the drain).

A revert (a workflow or person changed a value right after crmsync wrote it)
is a conflict like any other, marked `after_write`: reported once, never
rewritten in a loop (W9).

Previews (`crmsync plan`, `sync --dry-run`) only annotate the plan from what
is known: no history call, no log, nothing stored.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlite_utils

from crmsync.state import conflicts as store
from crmsync.state import views
from crmsync.state.errors import CrmRefused, MalformedRecord, UsageError
from crmsync.state.model import ChangeKind, FieldChange, ObjectType

from . import ownership
from .ownership import Conflict
from .plan import Plan

log = logging.getLogger(__name__)

# Who, when the CRM cannot be asked (Salesforce has no field history without tracking).
DEFAULT_WHO: Mapping[str, ChangeKind] = {
    "salesforce": ChangeKind.PERSON_OR_WORKFLOW,
    "hubspot": ChangeKind.UNKNOWN,
}

# None: the CRM keeps no history crmsync reads (connectors.base.Connector.latest_changes)
Explain = Callable[
    [ObjectType, Mapping[str, Sequence[str]]], Mapping[tuple[str, str], FieldChange] | None
]


@dataclass
class Tracked:
    """What a run's conflicts came to."""

    open: int = 0
    new: list[Conflict] = field(default_factory=list)  # new or changed this run
    resolved: int = 0
    handed_back: int = 0  # open, handed back: written by this run
    history_calls: int = 0  # API calls spent on property history

    def by_who(self, conflicts: Sequence[Conflict] | None = None) -> Counter[str]:
        return Counter(c.who or ChangeKind.UNKNOWN.value for c in (conflicts or self.new))


def track(
    db: sqlite_utils.Database,
    crm: str,
    plan: Plan,
    *,
    now: datetime,
    explain: Explain | None = None,
    calls: Callable[[], int] | None = None,
    store_rows: bool = True,
    evaluated: Collection[str] | None = None,
) -> tuple[Plan, Tracked]:
    """Record the plan's conflicts (see the module docstring); return the plan with each
    conflict's who and since filled in, and what changed. `evaluated`: the accounts the
    plan covers (None: all); the open conflicts of the others stay as they are."""
    known = {r.key: r for r in store.open_conflicts(db, crm)}
    fresh = [
        c
        for c in plan.conflicts
        if c.key not in known or not ownership.matches(c.field, known[c.key].held, c.crm_value)
    ]
    tracked = Tracked()
    changes: Mapping[tuple[str, str, str], FieldChange] = {}
    if fresh and explain is not None and store_rows:
        before = calls() if calls else 0
        changes = _explain(crm, fresh, explain)
        tracked.history_calls = (calls() if calls else 0) - before
    names = views.owner_names_by_user(db, crm, [c.user_id for c in changes.values() if c.user_id])
    fresh_keys = {c.key for c in fresh}
    annotated: list[Conflict] = []
    rows: list[store.ConflictRow] = []
    for c in plan.conflicts:
        row = known.get(c.key)
        who: str | None
        if row is None or c.key in fresh_keys:
            change = changes.get(c.key)
            who = change.kind.value if change else DEFAULT_WHO.get(crm, ChangeKind.UNKNOWN).value
            user = change.user_id if change else None
            name = names.get(user or "") if who == ChangeKind.PERSON.value else None
            changed_at = change.at if change else None
            first_seen = now
        else:
            who, user, name, changed_at = row.who, row.who_user, row.who_name, row.changed_at
            first_seen = row.first_seen or now
        cf = dataclasses.replace(c, who=who, who_name=name, since=first_seen)
        annotated.append(cf)
        rows.append(
            store.ConflictRow(
                crm=crm, object=c.object, record_id=c.record_id, field=c.field,
                account_id=c.account_id, label=c.label, wanted=c.intended, held=c.crm_value,
                last_written=c.last_written, after_write=c.after_write, who=who,
                who_user=user, who_name=name, changed_at=changed_at, first_seen=first_seen,
                last_seen=now,
            )  # fmt: skip
        )
    tracked.new = [c for c in annotated if c.key in fresh_keys]
    tracked.open = len(annotated)
    writing = plan.handed_back_written
    still = {c.key for c in plan.conflicts}
    if evaluated is not None:  # not evaluated: nothing they read changed (state/dirty.py)
        kept = {k for k, r in known.items() if k not in still and r.account_id not in evaluated}
        still |= kept
        tracked.open += len(kept)
    pending_back = {
        k for k, r in known.items() if k not in still and r.handed_back_at and k in writing
    }
    gone = [k for k in known if k not in still and k not in pending_back]
    tracked.handed_back = len(pending_back)
    tracked.open += len(pending_back)
    out = dataclasses.replace(plan, conflicts=tuple(annotated))
    if not store_rows:
        tracked.resolved = len(gone)
        return out, tracked
    store.save(db, rows)
    tracked.resolved = store.resolve(db, crm, gone, now)
    for c in tracked.new:
        log.warning(
            "a value crmsync would write is not crmsync's: left as is (`crmsync conflicts`)",
            extra={"crm": crm, "object": c.object, "record_id": c.record_id, "field": c.field,
                   "who": c.who, "after_write": c.after_write},
        )  # fmt: skip
    if tracked.resolved:
        log.info("conflicts resolved", extra={"crm": crm, "resolved": tracked.resolved})
    return out, tracked


def settle(db: sqlite_utils.Database, crm: str, *, now: datetime) -> int:
    """After the drain: handed-back conflicts whose field crmsync has now written are resolved."""
    n = store.resolve_written(db, crm, now)
    if n:
        log.info("handed-back conflicts written", extra={"crm": crm, "resolved": n})
    return n


def _explain(
    crm: str, conflicts: Sequence[Conflict], explain: Explain
) -> dict[tuple[str, str, str], FieldChange]:
    """Ask the CRM who last changed each conflicting field (HubSpot property history)."""
    wanted: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for c in conflicts:
        wanted[c.object][c.record_id].append(c.field)
    out: dict[tuple[str, str, str], FieldChange] = {}
    for obj, by_id in sorted(wanted.items()):
        try:
            found = explain(ObjectType(obj), {k: sorted(v) for k, v in by_id.items()})
        except (CrmRefused, MalformedRecord) as e:
            # History only explains; without it the conflict is still held and reported.
            log.warning(
                "could not read property history; who changed the values stays unknown",
                extra={"crm": crm, "object": obj, "code": e.code, "status": e.status},
            )
            continue
        if found is None:
            return out
        for (rid, name), change in found.items():
            out[(obj, rid, name)] = change
    return out


# ---------------------------------------------------------------- the CLI


WHO_TEXT = {
    "person": "a person",
    "workflow": "a workflow",
    "integration": "another integration",
    "import": "an import",
    "crmsync": "crmsync, before it signed its writes",
    "person or workflow": "a person or a workflow",
    "unknown": "unknown",
}


def who_text(row: store.ConflictRow) -> str:
    text = WHO_TEXT.get(row.who or "unknown", row.who or "unknown")
    if row.who == "person" and row.who_name:
        text = f"{row.who_name} (a person)"
    if row.after_write:
        text += "; changed after crmsync wrote it"
    return text


def hand_back(
    db: sqlite_utils.Database,
    crm: str,
    *,
    record_id: str | None,
    field_name: str | None,
    now: datetime | None = None,
) -> list[store.ConflictRow]:
    """`crmsync conflicts handback`: open conflicts back to crmsync (the next run writes them).

    A contact's status and reason move together: handing back either hands back both.
    A record or field without an open conflict is a usage error naming it.
    """
    fields = None
    if field_name is not None:
        fields = [field_name] + (["status", "reason"] if field_name in ("status", "reason") else [])
    rows = store.hand_back(db, crm, record_id=record_id, fields=fields, at=now)
    if not rows and record_id is not None:
        what = f"record {record_id}" + (f" field {field_name}" if field_name else "")
        raise UsageError(
            f"no open conflict to hand back on {crm} {what}",
            fix="`crmsync conflicts --crm " + crm + "` lists the open conflicts.",
        )
    return rows
