"""Write-back through the real HubSpot connector and hubspot-api-client to the loopback sandbox.

Same path as a run: sync/pull.py into a real mirror, the real rules, plan,
outbox, drain. What landed is read back from the sandbox's records.
"""

from __future__ import annotations

from typing import Any

import pytest

from crmsync.connectors.base import Secret
from crmsync.connectors.hubspot import HubSpotConnector, Settings
from crmsync.connectors.retry import RetryPolicy
from crmsync.sandbox.generate import generate
from crmsync.sandbox.hubspot import PRIVATE_APP_TOKEN, HubSpotSandbox
from crmsync.state import outbox
from crmsync.state.model import WriteKind
from crmsync.sync.drain import drain
from crmsync.sync.plan import enqueue
from crmsync.sync.preview import format_plan

from .harness import Harness

DATA = generate(seed=11, accounts=25, crms=("hubspot",))
CRM = "hubspot"


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
