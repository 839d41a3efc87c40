"""Outside people-data asked only about what can have changed, with what asking about
everything would ask.

A run with [enrichment] on works out which accounts need someone before the rules run
(sync/enrichment.py). An incremental run works it out only for the accounts the rules
evaluate (sync/evaluate.py `run_scope`) and keeps the others' wants from the runs before,
with the lookups left for later (over the per-run budget, failed, expired). Two
copies of a generated org take the same random changes and clock moves (as in
test_dirty_equivalence.py); one runs incrementally, the other looks everywhere. After each
step the provider was asked the same questions, the cache holds the same answers and the
flags (whose suggestions list the outside people) are the same.
"""

from __future__ import annotations

import random
import zlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from crmsync.state.model import OutsidePerson
from crmsync.sync.enrichment import EnrichmentReport, EnrichmentSettings, enrich
from crmsync.sync.evaluate import evaluate_and_plan, run_scope

from .test_dirty_equivalence import RULES, SETTINGS, World, _flags
from .test_streamed import CRM, _copy, _load

TITLES = {"Economic Buyer": "Chief Financial Officer", "Decision Maker": "VP Purchasing"}
ENRICHMENT = EnrichmentSettings(provider="fake", max_calls_per_run=4, refresh_days=30)


class Provider:
    """Canned answers by (domain, role): nobody, one person, or a failure; every call kept."""

    def __init__(self, nobody: bool = False) -> None:
        self.calls: list[tuple[str, str]] = []
        self.nobody = nobody  # every answer: nobody found

    def candidates(self, domain: str, role: str) -> list[OutsidePerson]:
        self.calls.append((domain, role))
        if self.nobody:
            return []
        kind = zlib.crc32(f"{domain}|{role}".encode()) % 4
        if kind == 3:
            raise TimeoutError("the provider timed out")
        title = TITLES.get(role, "VP Operations")
        return [OutsidePerson(role, "Pat Prospect", title, f"pat@{domain}", "fake")] * min(kind, 1)


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("enrichment-org") / "mirror.db"
    _load(path)
    return path


def _run(
    db: Any,
    world: World,
    step: int,
    provider: Provider,
    *,
    incremental: bool,
    later: timedelta = timedelta(0),
) -> tuple[EnrichmentReport, str, int]:
    """One run's enrichment then rules, as sync/run.py does them, `later` than the rules'
    as_of (`--as-of`): (the enrichment report, why the accounts were chosen, how many the
    rules evaluated)."""
    seen = world.now + timedelta(seconds=step) + later
    # queued=False: evaluate_and_plan below queues nothing (the test enqueues nothing)
    _, scope = run_scope(db, CRM, RULES, SETTINGS, as_of=world.now, incremental=incremental,
                         enrichment=ENRICHMENT, queued=False)  # fmt: skip
    report = enrich(db, CRM, RULES, ENRICHMENT, as_of=world.now, now=seen, provider=provider,
                    accounts=scope.account_ids)  # fmt: skip
    ev, _plan = evaluate_and_plan(db, CRM, RULES, SETTINGS, as_of=world.now, seen_at=seen,
                                  incremental=incremental, enrichment=ENRICHMENT)  # fmt: skip
    return report, scope.reason, ev.evaluated


def _cache(db: Any) -> list[tuple[Any, ...]]:
    lookups = db.conn.execute(
        "SELECT account_id, role, provider, found, fetched_at FROM enrichment_lookups"
        " ORDER BY account_id, role"
    ).fetchall()
    people = db.conn.execute(
        "SELECT account_id, role, name, email FROM enrichment_people ORDER BY account_id, role"
    ).fetchall()
    return [*lookups, *people]


@pytest.mark.parametrize("seed", [1, 2])
def test_incremental_runs_ask_what_full_runs_ask(org: Path, tmp_path: Path, seed: int) -> None:
    inc, full = _copy(org, tmp_path / "inc.db"), _copy(org, tmp_path / "full.db")
    world = World([inc, full], random.Random(seed))
    asked_inc, asked_full = Provider(), Provider()
    retried, evaluated, left = 0, [], 0
    for step in range(16):
        if step:
            for _ in range(world.rng.choice([0, 1, 2])):
                world.change()
            if world.rng.random() < 0.5:
                world.move_clock()
        before = len(asked_full.calls)
        report, reason, n = _run(inc, world, step, asked_inc, incremental=True)
        assert reason == ("first" if step == 0 else "changed")
        evaluated.append(n)
        _run(full, world, step, asked_full, incremental=False)
        assert asked_inc.calls == asked_full.calls, f"step {step}"
        assert _cache(inc) == _cache(full), f"step {step}"
        assert _flags(inc) == _flags(full), f"step {step}"
        retried += bool(left) and len(asked_full.calls) > before
        left = report.over_budget + report.failed
    # the budget and the failures left lookups for later runs, and they were asked
    assert retried and len(set(asked_full.calls)) > ENRICHMENT.max_calls_per_run
    assert sum(evaluated[1:]) < (len(evaluated) - 1) * evaluated[0]  # fewer than everything
    assert any("Pat Prospect" in str(row) for row in _flags(inc))


def test_an_answer_that_expires_is_asked_again(org: Path, tmp_path: Path) -> None:
    """A "nobody found" answer is cached for refresh_days like any other, then asked again
    though nothing in the account changed (the rules' as_of pinned: no account is due)."""
    db = _copy(org, tmp_path / "m.db")
    world, provider = World([db], random.Random(1)), Provider(nobody=True)
    settings = ENRICHMENT
    first, _, _ = _run(db, world, 0, provider, incremental=True)
    asked = sorted(provider.calls)
    assert first.calls == settings.max_calls_per_run and first.over_budget
    for step in range(1, 20):  # the rest of the wanted lookups, within the budget per run
        _run(db, world, step, provider, incremental=True, later=timedelta(hours=step))
    asked = sorted(provider.calls)
    assert len(asked) == len(set(asked)) > settings.max_calls_per_run
    provider.calls.clear()
    report, reason, evaluated = _run(db, world, 20, provider, incremental=True,
                                     later=timedelta(days=settings.refresh_days, hours=20))  # fmt: skip
    assert reason == "changed" and report.forgotten > 0
    # asked again: those forgotten, within the budget (the first asked first)
    assert provider.calls and set(provider.calls) <= set(asked)
    assert report.calls == min(report.forgotten, settings.max_calls_per_run)
