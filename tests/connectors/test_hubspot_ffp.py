"""FFP for HubSpot: a mirror kept by incremental pulls equals a fresh full pull (O6, D3, D4).

Goes through sync/pull.py and state/ (page + cursor per transaction), as a run does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_hubspot_support import FakeTime, connect, dataset, serve_dates_from

from crmsync.sandbox.hubspot import HubSpotSandbox
from crmsync.state.db import open_db
from crmsync.sync import pull as pull_mod
from tests.e2e.helpers import assert_same, snapshot

CRM = "hubspot"


@pytest.fixture
def clock(monkeypatch) -> FakeTime:
    fake = FakeTime()
    serve_dates_from(monkeypatch, fake)
    return fake


def run_pull(hs: HubSpotSandbox, clock: FakeTime, path: Path, *, full: bool) -> None:
    db = open_db(path)
    try:
        report = pull_mod.pull(db, connect(hs, clock), full=full, started_at=clock.now())
        assert not report.interrupted
    finally:
        db.conn.close()


def test_o6_incrementals_after_changes_equal_a_fresh_full_pull(clock, tmp_path):
    hs = HubSpotSandbox(
        dataset=dataset(contacts=1_200, companies=20, deals=12), clock=clock.time
    ).start()
    try:
        a, b = tmp_path / "a.db", tmp_path / "b.db"
        run_pull(hs, clock, a, full=True)
        clock.sleep(3600)
        # changes between runs (companies are 1-20, contacts 21-1220, deals 1221-1232)
        hs.update("contacts", "50", {"jobtitle": "Former VP"})
        hs.update("contacts", "28", {"hs_buying_role": "CHAMPION"})  # one buying role dropped
        hs.update("contacts", "26", {"hs_buying_role": "EXECUTIVE_SPONSOR"})
        hs.update("companies", "3", {"hs_ideal_customer_profile": "tier_3"})
        hs.update("deals", "1222", {"dealstage": "closedwon"})
        hs.archive("contacts", "60")  # D3
        hs.merge("contacts", "21", "23")  # D4: Champion and Economic Buyer on deal 1221
        hs.merge("companies", "5", "6")
        new = hs.create("contacts", {"email": "new@c.test", "hs_buying_role": "DECISION_MAKER"})
        hs.associate("contacts", new, "companies", "2", "primary")
        hs.update("contacts", new, {"firstname": "Nina"})  # association changes do not bump
        clock.sleep(60)
        run_pull(hs, clock, a, full=False)
        clock.sleep(3600)
        run_pull(hs, clock, a, full=False)  # a quiet run changes nothing
        run_pull(hs, clock, b, full=True)
        assert_same(snapshot(a, CRM), snapshot(b, CRM))
    finally:
        hs.stop()
