"""[writeback] in sync.toml: what the write-back may do, per tier and per CRM.

Read once by sync/config.py (`build`), passed to the planner (sync/plan.py) and
the drain. Field names belong to the connectors' tables, not here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from crmsync.state.model import Tier

TIERS = tuple(t.value for t in Tier)
PRIORITIES = ("high", "normal", "low")


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
