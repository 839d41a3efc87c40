"""Draining the outbox: partial rejections, crashes, transport failures, reverts (W1, W4, W5, W9)."""

from __future__ import annotations

from typing import Any

from crmsync.connectors.retry import DEFAULT_POLICY
from crmsync.state import outbox
from crmsync.state.model import HygieneStatus, WriteKind
from crmsync.sync.drain import drain, format_drifts, verify_landed, write_back
from crmsync.sync.plan import WritebackSettings, enqueue, plan

from .fakes import AS_OF, CRM, FakeConnector, Reject, Result, coverage, pull, single_threaded


def _contacts_results(ids: list[str]) -> dict[str, Any]:
    status = {cid: (HygieneStatus.STALE, f"{cid} is quiet.") for cid in ids}
    return {"001A": Result(contact_status=status)}


def _many_contacts(fake: Any, n: int) -> list[str]:
    ids = [f"003M{i:03d}" for i in range(n)]
    for cid in ids:
        fake.add_contact(cid, "001A", "Pat", f"Number{cid}")
    return ids


def test_w1_partial_rejection_good_rows_land_bad_rows_stay_with_crm_error(
    runner, fake, connector, db
):
    ids = _many_contacts(fake, 200)
    connector.rejects["003M007"] = Reject(
        "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Reason must be under 100 characters"
    )
    connector.rejects["003M042"] = Reject("UNABLE_TO_LOCK_ROW", "unable to obtain lock", True, 1)
    p, report = runner.run(_contacts_results(ids))
    assert len(p.items) == 200
    assert report.written == 199
    assert [(r.target_id, r.code, r.detail) for r in report.dead] == [
        ("003M007", "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Reason must be under 100 characters")
    ]
    assert not report.failed
    assert report.rejected == 1
    assert report.errors == [
        "update_contact 003M007: FIELD_CUSTOM_VALIDATION_EXCEPTION - Reason must be under 100 characters"
    ]
    # the lock was retried once, alone; the 198 successes were never re-sent
    assert [len(b) for b in connector.batches] == [200, 1]
    assert connector.batches[1][0].target_id == "003M042"
    assert report.calls == 2
    assert outbox.depth(db, CRM) == {
        "pending": 0,
        "inflight": 0,
        "done": 199,
        "failed": 0,
        "dead": 1,
    }
    [dead] = outbox.list_items(db, "dead")
    assert (dead["target_id"], dead["last_error_code"]) == (
        "003M007",
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
    )
    assert fake.contacts["003M042"]["owned"]["status"] == "stale"
    assert fake.contacts["003M007"]["owned"] == {}


def test_w1_rejected_row_is_not_retried_every_run(runner, fake, connector):
    ids = _many_contacts(fake, 2)
    connector.rejects["003M000"] = Reject("INVALID_FIELD_FOR_INSERT_UPDATE", "field not writable")
    runner.run(_contacts_results(ids))
    _, report = runner.run(_contacts_results(ids))
    assert report.calls == 0  # same payload as the dead row: no retry storm (W7)


def test_w1_a_row_the_crm_keeps_locking_is_retried_with_backoff_and_dead_only_after_max_attempts_runs(
    runner, fake, connector, db
):
    """A transient refusal is retried within the run under the one retry policy; each run
    that sent the row counts one attempt; only max_attempts such runs make it dead (issue 11)."""
    ids = _many_contacts(fake, 1)
    runner.settings = WritebackSettings(max_attempts=3)
    connector.rejects["003M000"] = Reject("UNABLE_TO_LOCK_ROW", "locked", retryable=True)
    sends = DEFAULT_POLICY.max_attempts
    for run, attempts in ((1, 1), (2, 2)):
        _, report = runner.run(_contacts_results(ids))
        assert [r.status for r in report.failed] == ["failed"], run
        assert report.calls == sends, "the first send and the policy's retries"
        [row] = outbox.list_items(db, "failed")
        assert row["attempts"] == attempts
    assert len(runner.waits) == 2 * (sends - 1) and all(w > 0 for w in runner.waits)
    assert sum(runner.waits[: sends - 1]) <= DEFAULT_POLICY.max_elapsed_seconds
    _, third = runner.run(_contacts_results(ids))
    assert [r.code for r in third.dead] == ["UNABLE_TO_LOCK_ROW"] and not third.failed
    assert outbox.depth(db, CRM)["dead"] == 1
    _, fourth = runner.run(_contacts_results(ids))
    assert fourth.calls == 0  # given up: no retry storm


def test_w4_w5_crash_after_crm_success_before_outbox_commit_creates_no_duplicate(
    runner, fake, connector, db
):
    results = {"001A": Result(flags=(single_threaded("001A"),))}
    p = runner.plan(results)
    enqueue(db, p)
    # The run claims the batch, the CRM creates the task, then the process dies
    # before mark(): the row stays inflight with an unknown outcome.
    batch = outbox.claim(db, CRM, 200)
    connector.write(batch)
    assert len(fake.tasks) == 1 and outbox.depth(db, CRM)["inflight"] == 1

    report = drain(db, connector, CRM, batch_size=200, max_attempts=5)
    assert report.recovered == 1 and report.written == 0
    assert connector.lookups == [[f"single_threaded_account:{CRM}:001A:001A"]]
    assert len(connector.batches) == 1  # no second create sent
    assert outbox.depth(db, CRM)["done"] == 1
    # the mirror knows the task: the next plan (even before a pull) creates nothing
    again = runner.plan(results, pull_first=False)
    assert again.empty
    again = runner.plan(results)
    assert again.empty and len(fake.tasks) == 1


def test_w4_crash_before_the_crm_call_sends_the_create_once(runner, connector, db, fake):
    results = {"001A": Result(flags=(single_threaded("001A"),))}
    enqueue(db, runner.plan(results))
    outbox.claim(db, CRM, 200)  # claimed, then killed before the CRM call
    report = drain(db, connector, CRM, batch_size=200, max_attempts=5)
    assert report.recovered == 0 and report.released == 1 and report.written == 1
    assert len(fake.tasks) == 1


def test_w4_timeout_after_the_server_applied_a_create(runner, connector, db, fake):
    results = {"001A": Result(coverage=coverage("001A"), flags=(single_threaded("001A"),))}
    connector.fail_after_apply = True
    _, report = runner.run(results)
    assert report.aborted is not None and report.written == 0
    depth = outbox.depth(db, CRM)
    assert (depth["inflight"], depth["pending"]) == (1, 1)  # create: unknown; update: requeued
    connector.fail_after_apply = False
    p, report = runner.run(results)
    assert report.recovered == 1
    assert len(fake.tasks) == 1
    assert outbox.depth(db, CRM)["done"] == 2
    assert runner.plan(results).empty


def test_transport_failure_leaves_rows_for_the_next_run(runner, connector, db, fake):
    results = {"001A": Result(coverage=coverage("001A"))}
    connector.unavailable = True
    _, report = runner.run(results)
    assert report.aborted is not None and "stopped" in report.summary()
    assert outbox.depth(db, CRM)["pending"] == 1
    connector.unavailable = False
    _, report = runner.run(results)
    assert report.written == 1 and fake.accounts["001A"]["owned"]["coverage_score"] == 55


def test_dry_run_makes_no_call(db, fake, connector, settings):
    pull(db, fake)
    results = {"001A": Result(coverage=coverage("001A"), flags=(single_threaded("001A"),))}
    out = write_back(db, connector, CRM, results, settings, as_of=AS_OF, dry_run=True)
    assert len(out.plan.items) == 2
    assert out.report.calls == 0 and connector.calls.total == 0
    assert outbox.depth(db, CRM)["pending"] == 0  # nothing queued either


def test_write_back_in_one_call(db, fake, connector, settings):
    pull(db, fake)
    results = {"001A": Result(coverage=coverage("001A"), flags=(single_threaded("001A"),))}
    out = write_back(db, connector, CRM, results, settings, as_of=AS_OF)
    assert out.report.written == 2 and out.report.by_kind == {"update_account": 1, "create_task": 1}
    assert "2 write(s) landed" in out.report.summary()


def test_w9_value_reverted_by_a_workflow_is_reported_not_rewritten(runner, fake, connector, db):
    def workflow(item: Any) -> None:  # a CRM rule that forces the status back
        if item.kind is WriteKind.UPDATE_ACCOUNT and "coverage_status" in item.payload:
            fake.accounts[item.target_id]["owned"]["coverage_status"] = "green"

    connector.on_write.append(workflow)
    results = {"001A": Result(coverage=coverage("001A"))}
    _, report = runner.run(results)
    assert report.written == 1
    assert verify_landed(db, CRM) == []  # nothing known yet: no pull since the write
    calls = connector.write_calls
    p, _ = runner.run(results)  # the pull brings the reverted value
    [drift] = runner.drifts
    assert (drift.field, drift.written, drift.crm_value) == ("coverage_status", "amber", "green")
    assert "coverage_status" in format_drifts(runner.drifts)[0]
    assert p.empty and [c.field for c in p.conflicts] == ["coverage_status"]
    assert connector.write_calls == calls  # not rewritten
    runner.run(results)
    assert len(runner.drifts) == 1  # and still reported on later runs
    assert connector.write_calls == calls


def test_created_task_lands_in_the_mirror_with_its_id(runner, db, fake):
    runner.run({"001A": Result(flags=(single_threaded("001A"),))})
    [tid] = fake.tasks
    row = db.conn.execute("SELECT id, key, is_closed FROM tasks").fetchone()
    assert row == (tid, f"single_threaded_account:{CRM}:001A:001A", 0)


def test_plan_against_mirror_only_never_calls_the_crm(db, fake, settings):
    connector = FakeConnector(fake)
    pull(db, fake)
    plan(db, CRM, {"001A": Result(coverage=coverage("001A"))}, settings, as_of=AS_OF)
    assert connector.calls.total == 0


def test_stop_request_finishes_the_batch_and_leaves_the_rest_pending(runner, fake, connector, db):
    ids = _many_contacts(fake, 5)
    enqueue(db, runner.plan(_contacts_results(ids)))
    asked = iter([False])
    report = drain(
        db, connector, CRM, batch_size=2, max_attempts=5, should_stop=lambda: next(asked, True)
    )
    assert report.written == 2 and len(connector.batches) == 1
    assert outbox.depth(db, CRM)["pending"] == 3


def test_batches_hold_one_kind_so_each_costs_one_call(runner, fake, connector, db):
    for n in range(3):
        fake.add_account(f"001K{n}", f"Kay {n}")
        fake.add_contact(f"003K{n}", f"001K{n}", "Kim", f"K{n}")
    results = {
        f"001K{n}": Result(
            coverage=coverage(f"001K{n}"),
            contact_status={f"003K{n}": (HygieneStatus.STALE, "Quiet.")},
        )
        for n in range(3)
    }
    enqueue(db, runner.plan(results))
    report = drain(db, connector, CRM, batch_size=3, max_attempts=5)
    assert [{i.kind.value for i in b} for b in connector.batches] == [
        {"update_account"},
        {"update_contact"},
    ]
    assert report.calls == 2
