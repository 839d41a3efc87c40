"""Write-back through the real HubSpot connector and hubspot-api-client to the loopback sandbox.

Same path as a run: sync/pull.py into a real mirror, the real rules, plan,
outbox, drain. What landed is read back from the sandbox's records.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from crmsync.connectors.base import Secret
from crmsync.connectors.hubspot import HubSpotConnector, Settings
from crmsync.connectors.retry import RetryPolicy
from crmsync.sandbox.generate import generate
from crmsync.sandbox.hubspot import PRIVATE_APP_TOKEN, HubSpotSandbox
from crmsync.state import outbox
from crmsync.state.model import ObjectType, WriteKind
from crmsync.sync.drain import drain
from crmsync.sync.plan import enqueue
from crmsync.sync.preview import format_plan
from crmsync.sync.reconcile import reconcile_object
from tests.clock import crm_now, crm_time

from .harness import Harness

DATA = generate(seed=11, accounts=25, crms=("hubspot",))
CRM = "hubspot"
# HubSpot's search index lags writes and HubSpot gives no figure (api-facts §3, airbyte #69203,
# P6). A sandbox lag of an hour: within a test, search does not show what was just written.
BEHIND = 3600.0


class Portal(Harness):
    def __init__(self, hs: HubSpotSandbox, tmp_path: Any) -> None:
        self.hs = hs
        self.conn = HubSpotConnector(
            Settings(host=hs.url, token=Secret(PRIVATE_APP_TOKEN, "test")),
            sleep=lambda s: None, policy=RetryPolicy(max_attempts=3, max_elapsed_seconds=5),
        )  # fmt: skip
        super().__init__(self.conn, tmp_path)

    def tasks(self) -> list[dict[str, Any]]:
        return [t for t in self.hs.records("tasks") if t["properties"].get("crmsync_key")]


@pytest.fixture
def portal(tmp_path):
    with HubSpotSandbox(dataset=DATA).start() as hs:
        p = Portal(hs, tmp_path)
        yield p
        p.db.conn.close()


def test_w10_hubspot_first_run_lands_second_run_writes_nothing(portal):
    p, report = portal.run()
    creates = [i for i in p.items if i.kind is WriteKind.CREATE_TASK]
    assert creates and report.rejected == 0 and report.written == len(p.items)
    keys = sorted(t["properties"]["crmsync_key"] for t in portal.tasks())
    assert keys == sorted(i.payload["key"] for i in creates)
    portal.hs.requests.reset()
    second, report2 = portal.run()
    assert second.empty, format_plan(second)
    assert portal.hs.requests.writes() == 0 and report2.calls == 0


def test_w8_hubspot_property_edited_by_a_person_is_kept(portal):
    p, _ = portal.run()
    cid = next(i.target_id for i in p.items if i.kind is WriteKind.UPDATE_ACCOUNT)
    portal.hs.update("companies", cid, {"crmsync_coverage_score": "99"})
    second, _ = portal.run()
    assert [(c.record_id, c.field, c.crm_value) for c in second.conflicts] == [
        (cid, "coverage_score", 99)
    ]
    assert portal.hs.record("companies", cid)["crmsync_coverage_score"] == "99"
    [held] = portal.conflicts  # recorded for `crmsync conflicts`: crmsync's value was replaced
    assert (held.record_id, held.field, held.held, held.after_write) == (
        cid, "coverage_score", 99, True
    )


def test_w5_hubspot_killed_after_create_no_duplicate_task(portal):
    enqueue(portal.db, portal.plan())
    while batch := outbox.claim(portal.db, CRM, 100):
        portal.conn.write(batch)  # HubSpot applies it; the process dies before mark()
    created = len(portal.tasks())
    report = drain(portal.db, portal.conn, CRM, batch_size=100, max_attempts=5)
    assert report.recovered == created > 0
    keys = [t["properties"]["crmsync_key"] for t in portal.tasks()]
    assert len(keys) == len(set(keys)) == created
    assert portal.plan().empty


def _crash_after_sending(portal, *, sent: bool) -> Any:
    """Queue the plan, claim it all and (when `sent`) let HubSpot apply it, then die before
    mark(): every row stays inflight. Returns the claim time."""
    enqueue(portal.db, portal.plan())
    claimed_at = crm_now()
    while batch := outbox.claim(portal.db, CRM, 100, now=claimed_at):
        if sent:
            portal.conn.write(batch)
    return claimed_at


def _mirror_tasks(portal) -> dict[str, str]:
    rows = portal.db.conn.execute(
        "SELECT key, id FROM tasks WHERE crm = ? AND deleted_at IS NULL", [CRM]
    )
    return dict(rows.fetchall())


def test_w5_hubspot_killed_after_create_rerun_at_once_waits_for_the_search_index(portal):
    # Before: the rerun's look-up by key missed the creates (search lags) and sent them again.
    portal.hs.app.index_lag_seconds = BEHIND
    claimed_at = _crash_after_sending(portal, sent=True)
    created = {t["properties"]["crmsync_key"]: t["id"] for t in portal.tasks()}
    assert created
    rerun = drain(portal.db, portal.conn, CRM, batch_size=100, max_attempts=5,
                  now=claimed_at + timedelta(seconds=1))  # fmt: skip
    assert (rerun.waiting, rerun.recovered) == (len(created), 0)
    assert "wait for the CRM's search to catch up" in rerun.summary()
    assert len(portal.tasks()) == len(created), "a task was created twice"
    assert outbox.depth(portal.db, CRM)["inflight"] == len(created)
    # The index catches up; a later run finds each create by its key and settles it.
    portal.hs.app.index_lag_seconds = 0
    later = drain(portal.db, portal.conn, CRM, batch_size=100, max_attempts=5,
                  now=claimed_at + timedelta(minutes=5))  # fmt: skip
    assert (later.recovered, later.waiting) == (len(created), 0)
    assert len(portal.tasks()) == len(created)
    assert outbox.depth(portal.db, CRM)["inflight"] == 0
    assert _mirror_tasks(portal) == created
    assert portal.plan().empty


def test_w4_hubspot_create_never_sent_waits_the_lag_then_is_sent_once(portal):
    portal.hs.app.index_lag_seconds = BEHIND
    claimed_at = _crash_after_sending(portal, sent=False)
    keys = sorted(i.key for i in outbox.inflight_unknown(portal.db, CRM)
                  if i.kind is WriteKind.CREATE_TASK)  # fmt: skip
    assert keys
    rerun = drain(portal.db, portal.conn, CRM, batch_size=100, max_attempts=5,
                  now=claimed_at + timedelta(seconds=1))  # fmt: skip
    assert rerun.waiting == len(keys) and portal.tasks() == []
    # The declared lag (300 s) has passed and the keys are still not found: not sent, so sent now.
    later = drain(portal.db, portal.conn, CRM, batch_size=100, max_attempts=5,
                  now=claimed_at + timedelta(seconds=300))  # fmt: skip
    assert (later.waiting, later.recovered) == (0, 0) and later.rejected == 0
    assert sorted(t["properties"]["crmsync_key"] for t in portal.tasks()) == keys
    assert outbox.depth(portal.db, CRM)["inflight"] == 0


def test_reconcile_right_after_a_create_keeps_the_new_task(tmp_path):
    # Before: the task listing (search) did not show the new tasks and reconcile retired them;
    # the next plan would have created them again.
    now = [crm_time()]  # the sandbox's clock, moved by hand
    with HubSpotSandbox(dataset=DATA, clock=lambda: now[0]).start() as hs:
        portal = Portal(hs, tmp_path)
        # A task crmsync created two hours ago: the listing shows it (it is not empty).
        old = hs.records("tasks")[0]["id"]
        hs.update("tasks", old, {"crmsync_key": "stale_contact:hubspot:earlier"})
        now[0] += 7200
        _, report = portal.run()
        tasks = {t["properties"]["crmsync_key"]: t["id"] for t in portal.tasks()}
        assert len(tasks) > 1 and report.written
        hs.app.index_lag_seconds = BEHIND
        assert set(portal.conn.reconcile_ids(ObjectType.TASK) or ()) == {old}
        counts = reconcile_object(portal.db, portal.conn, ObjectType.TASK, seen_at=crm_now())
        assert counts is not None and counts["deleted"] == 0
        assert _mirror_tasks(portal) == tasks
        # Past the lag the listing is trusted again: a task deleted for good is retired.
        hs.app.index_lag_seconds = 0
        gone_key, gone = next((k, v) for k, v in sorted(tasks.items()) if v != old)
        hs.purge("tasks", gone)
        counts = reconcile_object(portal.db, portal.conn, ObjectType.TASK,
                                  seen_at=crm_now() + timedelta(minutes=10))  # fmt: skip
        assert counts is not None and counts["deleted"] == 1
        assert _mirror_tasks(portal) == {k: v for k, v in tasks.items() if k != gone_key}
        portal.db.conn.close()
