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

`incremental` evaluates only the accounts that can have changed since the last
evaluation (state/dirty.py: a write touched them, or their due day came, rules/due.py),
with the same flags and plan as evaluating everything; the run's totals (flags by
rule, coverage) are then the whole CRM's, read from the mirror. A store always records
each account's due day and the settings' fingerprint, so the next run can be
incremental; a preview evaluates everything and records nothing. With [identity]
on, an account's findings also read the other CRM's records (sync/identity.py): a
change there, or to a link, lists it too (migration m011).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version

import sqlite_utils

from crmsync import rules
from crmsync.rules import AccountResult, RuleSettings
from crmsync.rules.due import next_due
from crmsync.state import dirty, views
from crmsync.state import flags as flag_store
from crmsync.state.db import transaction
from crmsync.state.model import AccountView

from . import identity as identity_mod
from . import plan as plan_mod
from .enrichment import EnrichmentSettings
from .identity import IdentitySettings
from .writeback_settings import WritebackSettings

log = logging.getLogger(__name__)

# Accounts per chunk: flags staged, results planned, then dropped. A chunk's views, results
# and writes are most of a run's memory above the imports: 500 accounts peaked at 69 MiB
# (10k contacts) and 96 MiB (1M), 100 at 45 and 60 MiB, for the same CPU (bench/README.md).
CHUNK = 100

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
    # the accounts this run evaluated (None: all) and why; `accounts`, `by_rule` and
    # `coverage` are the whole CRM's either way
    scope: dirty.Scope = field(default_factory=lambda: dirty.Scope(None, "full"))
    evaluated: int = 0  # live accounts this run evaluated

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
    incremental: bool = False,
    fingerprint: str = "",
    identity: IdentitySettings | None = None,
    scope: dirty.Scope | None = None,
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
        if not store:
            ev.scope = dirty.Scope(None, "preview")  # every account; nothing recorded
        else:
            ev.scope = scope or dirty.scope(db, crm, fingerprint, as_of, full=not incremental)
            dirty.begin(db, crm, ev.scope)
        ids = ev.scope.account_ids
        staged = flag_store.FlagRun(
            db, crm, seen_at=seen_at, rules_run=rules_run, store=store, keep_keys=keep,
            accounts=ids,
        )  # fmt: skip
        for chunk, seen, found in _chunks(db, crm, settings, as_of, chunk_size, ids, identity):
            for result in chunk.values():
                ev.evaluated += 1
                if result.coverage is not None:
                    ev.coverage[str(result.coverage.status)] += 1
                for f in result.flags:
                    if not f.suppressed:
                        ev.by_rule[f.rule] += 1
            staged.stage(f for result in chunk.values() for f in result.flags)
            if store:
                dirty.add(db, crm, found)
            if on_chunk is not None:
                on_chunk(chunk, seen)
            if keep:
                ev.results.update(chunk)
        ev.changes = staged.finish()
        ev.accounts = ev.evaluated
        if store:
            dirty.finish(db, crm, fingerprint=fingerprint, as_of=as_of, evaluated_at=seen_at)
            if ids is not None:  # the whole CRM's totals, not this run's
                ev.accounts, ev.coverage = dirty.coverage_totals(db, crm)
                ev.by_rule = Counter({
                    rule: n["open"] for rule, n in flag_store.status_counts(db, crm).items()
                    if rule in rules_run and n.get("open")
                })  # fmt: skip
    log.info(
        "rules evaluated",
        extra={"crm": crm, "accounts": ev.accounts, "evaluated": ev.evaluated,
               "scope": ev.scope.reason, "dirty": ev.scope.dirty, "due": ev.scope.due,
               **{f"flags_{k}": v for k, v in ev.by_rule.items()}},
    )  # fmt: skip
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
    incremental: bool = False,
    identity: IdentitySettings | None = None,
    enrichment: EnrichmentSettings | None = None,
) -> tuple[Evaluation, plan_mod.Plan]:
    """`evaluate`, each chunk's results planned as they come (sync/plan.py `Planner`):
    the same flags and writes as `evaluate` then `plan` over every result, in memory
    that holds one chunk's results. With `queue` (needs `store`) each chunk's writes go
    into the outbox in the same transaction as the flags; `keep` keeps every write in the
    Plan (by default without `queue`: a preview prints them). With `incremental`, only
    the accounts that can have changed (see the module docstring); task creates the
    per-owner cap held are evaluated again next run, as a full evaluation would."""
    if queue and not store:
        raise ValueError("queue needs store: a preview queues nothing")
    with _transaction(db, store):
        # The scope first: the planner reads the tasks of those accounts only.
        print_, run = run_scope(
            db, crm, settings, writeback, as_of=as_of, incremental=incremental,
            identity=identity, enrichment=enrichment, queued=queue or not store,
        )  # fmt: skip
        scope = run if store else None
        planner = plan_mod.Planner(
            db, crm, writeback, as_of=as_of, queue=queue, keep=keep,
            accounts=scope.account_ids if scope is not None else None, remember=store,
        )  # fmt: skip
        ev = evaluate(
            db, crm, settings, as_of=as_of, seen_at=seen_at, store=store,
            on_chunk=planner.add, chunk_size=chunk_size, fingerprint=print_,
            identity=identity, scope=scope,
        )  # fmt: skip
        return ev, planner.finish()  # a stored run lists the accounts the cap held as dirty


def run_scope(
    db: sqlite_utils.Database,
    crm: str,
    settings: RuleSettings,
    writeback: WritebackSettings,
    *,
    as_of: datetime,
    incremental: bool,
    identity: IdentitySettings | None = None,
    enrichment: EnrichmentSettings | None = None,
    queued: bool = True,
) -> tuple[str, dirty.Scope]:
    """(the settings' fingerprint, the accounts a stored run evaluates): what
    `evaluate_and_plan` will evaluate, read before it (the enrichment step asks only
    about those accounts). A stored run that queues nothing (crmsync's fields missing in
    the CRM) leaves its writes unqueued: its fingerprint differs (`queued`), so the next
    run that queues plans all."""
    print_ = fingerprint(
        settings, writeback, views.owner_with_most_accounts(db, crm), identity,
        queued=queued, enrichment=enrichment,
    )  # fmt: skip
    return print_, dirty.scope(db, crm, print_, as_of, full=not incremental)


def fingerprint(
    settings: RuleSettings,
    writeback: WritebackSettings,
    fallback_owner: str | None,
    identity: IdentitySettings | None = None,
    *,
    queued: bool = True,
    enrichment: EnrichmentSettings | None = None,
) -> str:
    """What every account's results and plan read besides its own records: the rules',
    the write-back's, [identity]'s and [enrichment]'s settings (which accounts were asked
    about), who gets the tasks of accounts without an active owner, and crmsync's version.
    A different one makes the next run evaluate all."""
    text = repr(
        (
            _version(),
            sorted(rules.RULE_NAMES),
            repr(settings),
            repr(writeback),
            fallback_owner,
            repr(identity) if identity is not None and identity.on else "",
            "" if queued else "writes not queued",
            repr(enrichment) if enrichment is not None and enrichment.enabled else "",
        )
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _version() -> str:
    try:
        return version("crmsync")
    except PackageNotFoundError:
        return ""


def _chunks(
    db: sqlite_utils.Database,
    crm: str,
    settings: RuleSettings,
    as_of: datetime,
    size: int,
    account_ids: tuple[str, ...] | None = None,
    identity: IdentitySettings | None = None,
) -> Iterator[tuple[dict[str, AccountResult], dict[str, AccountView], dict[str, dirty.Evaluated]]]:
    """(results, views, what to remember) of `size` accounts at a time (of `account_ids`
    only, if given); all dropped after the chunk.

    With [identity] on, linked contacts carry the other CRM's evidence and what is
    written for linked records stays in the home CRM (sync/identity.py)."""
    chunk: dict[str, AccountResult] = {}
    seen: dict[str, AccountView] = {}
    found: dict[str, dirty.Evaluated] = {}
    router = identity_mod.Router(db, crm, identity) if identity is not None else None
    own = views.iter_account_views(db, crm, account_ids=account_ids)
    for view in identity_mod.views_for_rules(db, crm, own, identity):
        result = rules.evaluate_account(view, settings, as_of)
        found[view.id] = dirty.Evaluated(
            next_due(view, settings, as_of, result),
            str(result.coverage.status) if result.coverage is not None else None,
        )
        if router is not None:
            result = router.route(result, view)
        # `facts` holds the view again; results outlive the chunk when kept (no `on_chunk`).
        chunk[view.id] = dataclasses.replace(result, facts=None)
        seen[view.id] = view
        if len(chunk) >= size:
            yield chunk, seen, found
            chunk, seen, found = {}, {}, {}
    if chunk:
        yield chunk, seen, found


@contextmanager
def _transaction(db: sqlite_utils.Database, store: bool) -> Iterator[None]:
    if store:
        with transaction(db):
            yield
    else:
        yield
