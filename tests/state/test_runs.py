"""Run history: start, finish, interrupted runs, API call sums."""

from __future__ import annotations

import pytest

from crmsync.state import runs
from tests.state.records import at


def test_run_is_recorded_with_counts_calls_and_quota(db) -> None:
    run_id = runs.start(db, "salesforce", "full", at())
    assert runs.last_runs(db)[0]["outcome"] is None  # running
    runs.finish(
        db,
        run_id,
        runs.RunOutcome.PARTIAL,
        at(5),
        counts={"contacts": {"inserted": 3}},
        api_calls=7,
        api_by_operation={"query": 6, "composite": 1},
        quota=(120, 100000),
        error="2 rows rejected",
    )
    (run,) = runs.last_runs(db)
    assert run["outcome"] == "partial" and run["finished_at"] == at(5)
    assert run["counts"] == {"contacts": {"inserted": 3}}
    assert run["api_by_operation"] == {"query": 6, "composite": 1}
    assert (run["api_calls"], run["quota_used"], run["quota_limit"]) == (7, 120, 100000)
    assert run["error"] == "2 rows rejected"


def test_unknown_outcome_and_run_are_errors(db) -> None:
    run_id = runs.start(db, "hubspot", "incremental", at())
    with pytest.raises(ValueError):
        runs.finish(db, run_id, "great", at(1))
    with pytest.raises(KeyError):
        runs.finish(db, 999, "ok", at(1))


def test_o1_killed_run_is_recorded_as_interrupted(db) -> None:
    runs.start(db, "salesforce", "incremental", at())
    assert runs.close_interrupted(db, at(10)) == 1
    (run,) = runs.last_runs(db)
    assert run["outcome"] == "interrupted" and run["error"]


def test_last_runs_newest_first_and_api_calls_since(db) -> None:
    for minute, crm in ((0, "salesforce"), (10, "hubspot"), (20, "salesforce")):
        run_id = runs.start(db, crm, "incremental", at(minute))
        runs.finish(db, run_id, "ok", at(minute + 1), api_calls=minute + 1)
    assert [r["started_at"] for r in runs.last_runs(db, 2)] == [at(20), at(10)]
    assert [r["crm"] for r in runs.last_runs(db, crm="hubspot")] == ["hubspot"]
    assert runs.api_calls_since(db, "salesforce", at(5)) == 21
    assert runs.api_calls_since(db, "salesforce", at(-5)) == 22
