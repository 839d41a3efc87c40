"""Evaluate: every account view of the mirror through the rules, flags into state.

Streamed a chunk of accounts at a time (CHUNK), so memory does not grow with
the org: views come from a few ordered queries (state/views.py), each chunk's
flags are staged into the flags table (state/flags.py `FlagRun`: a flag found
again unchanged is not rewritten) and its results handed to `on_chunk` (the
planner, sync/plan.py `Planner`), then dropped. After the last chunk the flags
no chunk found are resolved in one set-based statement. `evaluate_and_plan` is
the two together, as a run does them (sync/run.py): with `queue` each chunk's
writes go into the outbox as they are decided.

With `store` the whole step is one transaction (the views read one snapshot;
a failure stores no flag and queues no write); without it (a plan or dry run)
nothing is written.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import sqlite_utils

from crmsync import rules
from crmsync.rules import AccountResult, RuleSettings
from crmsync.state import flags as flag_store
from crmsync.state import views
from crmsync.state.db import transaction
from crmsync.state.model import AccountView

from . import identity as identity_mod
from . import plan as plan_mod
from .identity import IdentitySettings
from .writeback_settings import WritebackSettings

log = logging.getLogger(__name__)

CHUNK = 500  # accounts per chunk: flags staged, results planned, then dropped

# A chunk's results and the views they came from, by account id (the planner reads what
# the CRM holds from the views: nothing is read from the mirror twice).
OnChunk = Callable[[Mapping[str, AccountResult], Mapping[str, AccountView]], None]


@dataclass
class Evaluation:
    crm: str
    # by account id; only without `on_chunk`: streamed runs keep none
    results: dict[str, AccountResult] = field(default_factory=dict)
    changes: flag_store.FlagChanges | None = None
    accounts: int = 0
    by_rule: Counter[str] = field(default_factory=Counter)
    coverage: Counter[str] = field(default_factory=Counter)  # accounts by coverage status

    def coverage_counts(self) -> Counter[str]:
        return Counter(self.coverage)


def evaluate(
    db: sqlite_utils.Database,
    crm: str,
    settings: RuleSettings,
    *,
    as_of: datetime,
    seen_at: datetime,
    store: bool = True,
    on_chunk: OnChunk | None = None,
    chunk_size: int = CHUNK,
    identity: IdentitySettings | None = None,
) -> Evaluation:
    """Run every rule over `crm`'s accounts as of `as_of`; store the flags (commits).

    With `store=False` (a plan or dry run) nothing is written: `changes` then
    says what storing would have changed. `on_chunk` gets each chunk's results
    (account id -> result, ids ascending, chunk after chunk). The results are kept
    in `results` only without `on_chunk`.
    """
    keep = on_chunk is None
    ev = Evaluation(crm)
    rules_run = set(rules.RULE_NAMES)
    with _transaction(db, store):
        staged = flag_store.FlagRun(
            db, crm, seen_at=seen_at, rules_run=rules_run, store=store, keep_keys=keep
        )
        for chunk, seen in _chunks(db, crm, settings, as_of, chunk_size, identity):
            for result in chunk.values():
                ev.accounts += 1
                if result.coverage is not None:
                    ev.coverage[str(result.coverage.status)] += 1
                for f in result.flags:
                    if not f.suppressed:
                        ev.by_rule[f.rule] += 1
            staged.stage(f for result in chunk.values() for f in result.flags)
            if on_chunk is not None:
                on_chunk(chunk, seen)
            if keep:
                ev.results.update(chunk)
        ev.changes = staged.finish()
    log.info(
        "rules evaluated",
        extra={"crm": crm, "accounts": ev.accounts, **{f"flags_{k}": v for k, v in ev.by_rule.items()}},
    )
    return ev


def evaluate_and_plan(
    db: sqlite_utils.Database,
    crm: str,
    settings: RuleSettings,
    writeback: WritebackSettings,
    *,
    as_of: datetime,
    seen_at: datetime,
    store: bool = True,
    queue: bool = False,
    keep: bool | None = None,
    chunk_size: int = CHUNK,
    identity: IdentitySettings | None = None,
) -> tuple[Evaluation, plan_mod.Plan]:
    """`evaluate`, each chunk's results planned as they come (sync/plan.py `Planner`):
    the same flags and writes as `evaluate` then `plan` over every result, in memory
    that holds one chunk's results. With `queue` (needs `store`) each chunk's writes go
    into the outbox in the same transaction as the flags; `keep` keeps every write in the
    Plan (by default without `queue`: a preview prints them)."""
    if queue and not store:
        raise ValueError("queue needs store: a preview queues nothing")
    with _transaction(db, store):
        planner = plan_mod.Planner(db, crm, writeback, as_of=as_of, queue=queue, keep=keep)
        ev = evaluate(
            db, crm, settings, as_of=as_of, seen_at=seen_at, store=store,
            on_chunk=planner.add, chunk_size=chunk_size, identity=identity,
        )  # fmt: skip
        return ev, planner.finish()


def _chunks(
    db: sqlite_utils.Database,
    crm: str,
    settings: RuleSettings,
    as_of: datetime,
    size: int,
    identity: IdentitySettings | None = None,
) -> Iterator[tuple[dict[str, AccountResult], dict[str, AccountView]]]:
    """(results, views) of `size` accounts at a time; both are dropped after the chunk.

    With [identity] on, linked contacts carry the other CRM's evidence and what is
    written for linked records stays in the home CRM (sync/identity.py)."""
    chunk: dict[str, AccountResult] = {}
    seen: dict[str, AccountView] = {}
    router = identity_mod.Router(db, crm, identity) if identity is not None else None
    all_views = views.iter_account_views(db, crm)
    for view in identity_mod.views_for_rules(db, crm, all_views, identity):
        result = rules.evaluate_account(view, settings, as_of)
        if router is not None:
            result = router.route(result, view)
        # `facts` holds the view again; results outlive the chunk when kept (no `on_chunk`).
        chunk[view.id] = dataclasses.replace(result, facts=None)
        seen[view.id] = view
        if len(chunk) >= size:
            yield chunk, seen
            chunk, seen = {}, {}
    if chunk:
        yield chunk, seen


@contextmanager
def _transaction(db: sqlite_utils.Database, store: bool) -> Iterator[None]:
    if store:
        with transaction(db):
            yield
    else:
        yield
