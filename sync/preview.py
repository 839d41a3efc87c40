"""The plan in words: what `crmsync plan` and `sync --dry-run` print, per owner.

Names, subjects and values come from the CRM: each line is printable text only
(state/text.py), so no control sequence reaches the terminal.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from crmsync.state.model import Write, WriteKind
from crmsync.state.text import printable

from .ownership import SIGNATURE, Conflict
from .plan import Plan

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


def show(value: Any, limit: int = 60) -> str:
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
            lines.append(f"  held (cap reached): {show(h.label, LABEL_MAX)}")
        for cf in group.conflicts:
            lines.append(
                f"  conflict: {cf.object[:-1]} {show(cf.label, LABEL_MAX)} [{cf.record_id}] {cf.field}: "
                f"CRM has {show(cf.crm_value)} ({conflict_source(cf)}); "
                f"left as is (crmsync wants {show(cf.intended)})"
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


def conflict_source(cf: Conflict) -> str:
    """Who set a conflicting value and how it relates to crmsync's writes, in words."""
    who = cf.who
    words = WHO_WORDS.get(who or "", "not crmsync's")
    name = cf.who_name
    if who == "person" and name:
        words = f"set by {name}"
    if cf.after_write:
        wrote = cf.last_written
        words += (
            f", replacing crmsync's {show(wrote)}" if wrote is not None else ", replacing crmsync's value"
        )
    return words


def _item_lines(item: Write) -> list[str]:
    verb = _VERBS[item.kind]
    if item.kind is WriteKind.CREATE_TASK:
        due = item.payload.get("due_date")
        prio = item.payload.get("priority")
        return [f"  {verb}: {show(item.label, LABEL_MAX)} (due {due}, priority {prio})"]
    if item.kind is WriteKind.COMPLETE_TASK:
        return [f"  {verb}: {show(item.label, LABEL_MAX)} [{item.target_id}]"]
    head = f"  {verb} {show(item.label, LABEL_MAX)} [{item.target_id}]:"
    out = [head]
    for name, new in item.payload.items():
        if name in _HIDDEN:
            continue
        out.append(f"      {name}: {show(item.old.get(name))} -> {show(new)}")
    return out


def format_plan(plan: Plan) -> str:
    return "\n".join(plan_lines(plan))


def _value(v: Any) -> Any:
    return v.value if isinstance(v, Enum) else v
