"""Evaluate: every account view of the mirror through the rules, flags into state.

Views stream from a few ordered queries (state/views.py), so memory stays flat
in the number of contacts; the per-account results (flags, coverage, contact
statuses) are kept for the planner, which needs them per account.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlite_utils

from crmsync import rules
from crmsync.state import flags as flag_store
from crmsync.state import views

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlimFacts:
    """The part of rules' Facts the planner reads (the account's tier)."""

    tier: Any


@dataclass
class Evaluation:
    crm: str
    results: dict[str, Any] = field(default_factory=dict)  # account id -> rules.AccountResult
    changes: flag_store.FlagChanges | None = None
    accounts: int = 0
    by_rule: Counter[str] = field(default_factory=Counter)

    def coverage_counts(self) -> Counter[str]:
        return Counter(
            str(r.coverage.status) for r in self.results.values() if r.coverage is not None
        )


def evaluate(
    db: sqlite_utils.Database,
    crm: str,
    settings: Any,
    *,
    as_of: datetime,
    seen_at: datetime,
    store: bool = True,
) -> Evaluation:
    """Run every rule over `crm`'s accounts as of `as_of`; store the flags (commits).

    With `store=False` (a plan or dry run) nothing is written: `changes` then
    says what storing would have changed.
    """
    ev = Evaluation(crm)
    all_flags = []
    for view in views.iter_account_views(db, crm):
        result = rules.evaluate_account(view, settings, as_of)
        # Keep what the planner reads; `facts` holds the whole view (every contact,
        # role and change) and would keep the mirror in memory account by account.
        ev.results[view.id] = dataclasses.replace(
            result,
            facts=SlimFacts(tier=getattr(result.facts, "tier", None)),  # type: ignore[arg-type]
        )
        ev.accounts += 1
        for f in result.flags:
            all_flags.append(f)
            if not f.suppressed:
                ev.by_rule[f.rule] += 1
    rules_run = set(rules.RULE_NAMES)
    if store:
        ev.changes = flag_store.sync_flags(db, crm, all_flags, seen_at=seen_at, rules_run=rules_run)
    else:
        ev.changes = flag_store.preview_flags(db, crm, all_flags, rules_run=rules_run)
    log.info(
        "rules evaluated",
        extra={"crm": crm, "accounts": ev.accounts, **{f"flags_{k}": v for k, v in ev.by_rule.items()}},
    )
    return ev
