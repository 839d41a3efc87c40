"""`crmsync sandbox --realistic` (the default): a real account's limits, met through the
official clients (sandbox/realistic.py cites each number).

The emulators run on fake clocks here, so "within one second" and "20 seconds later" are
exact and no test sleeps.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from click.testing import CliRunner
from hubspot import HubSpot
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceRefusedRequest
from urllib3.util.retry import Retry

from crmsync.connectors.salesforce.transport import build_session
from crmsync.sandbox.hubspot import PRIVATE_APP_TOKEN, HubSpotSandbox
from crmsync.sandbox.realistic import HUBSPOT_PLANS, SALESFORCE_PLANS, profile
from crmsync.sandbox.salesforce import SalesforceSandbox
from crmsync.sync.cli import cli
from tests.sandbox.conftest import HsClock, SfClock, hs_small_dataset, sf_small_dataset


class Sleeps(list):
    """Records the emulator's waits and moves its clock by them (never really sleeps)."""

    def __init__(self, clock: HsClock) -> None:
        super().__init__()
        self.clock = clock

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        self.clock.advance(seconds)


def _hubspot(plan: str = "starter", **kw: Any) -> tuple[HubSpotSandbox, HsClock, Sleeps, HubSpot]:
    clock = HsClock()
    sleeps = Sleeps(clock)
    hs = HubSpotSandbox(dataset=hs_small_dataset(), clock=clock, sleep=sleeps,
                        **{**profile("hubspot", plan).sandbox_kwargs(), **kw}).start()
    return hs, clock, sleeps, HubSpot(access_token=PRIVATE_APP_TOKEN, host=hs.url, retry=Retry(0))


def _search(client: HubSpot, **body: Any) -> Any:
    return client.crm.contacts.search_api.do_search(public_object_search_request=body)


def _policy(e: Any) -> str:
    return json.loads(e.body)["policyName"]


def test_realistic_hubspot_answers_the_sixth_search_in_one_second_with_429():
    hs, clock, _, client = _hubspot(latency_ms=0)
    try:
        for _ in range(5):
            _search(client, limit=1)
        with pytest.raises(Exception) as e:
            _search(client, limit=1)
        assert e.value.status == 429 and _policy(e.value) == "SECONDLY"
        clock.advance(1)
        assert _search(client, limit=1).total == 250
    finally:
        hs.stop()


@pytest.mark.parametrize("plan", ["starter", "professional"])
def test_realistic_hubspot_rolling_limit_is_the_plans(plan):
    hs, clock, _, client = _hubspot(plan, latency_ms=0)
    per_10s = HUBSPOT_PLANS[plan].per_10s
    try:
        basic = client.crm.contacts.basic_api
        for _ in range(per_10s):
            page = basic.get_page(limit=1, _preload_content=False)
        assert page.headers["X-HubSpot-RateLimit-Max"] == str(per_10s)
        assert page.headers["X-HubSpot-RateLimit-Daily"] == str(HUBSPOT_PLANS[plan].daily)
        with pytest.raises(Exception) as e:
            basic.get_page(limit=1)
        assert e.value.status == 429 and _policy(e.value) == "TEN_SECONDLY_ROLLING"
        clock.advance(10)
        assert basic.get_page(limit=1).results
    finally:
        hs.stop()


def test_realistic_hubspot_search_sees_a_write_only_after_the_index_lag():
    hs, clock, _, client = _hubspot(latency_ms=0)
    lag = HUBSPOT_PLANS["starter"].index_lag_seconds
    try:
        client.crm.contacts.basic_api.update("2001", simple_public_object_input={
            "properties": {"jobtitle": "Chief Realism Officer"}})
        by_title = {"filterGroups": [{"filters": [
            {"propertyName": "jobtitle", "operator": "EQ", "value": "Chief Realism Officer"}]}]}
        assert _search(client, **by_title).total == 0  # the index has not caught up
        # the record itself is there at once (read by id or listed)
        got = client.crm.contacts.basic_api.get_by_id("2001", properties=["jobtitle"])
        assert got.properties["jobtitle"] == "Chief Realism Officer"
        clock.advance(lag - 1)
        assert _search(client, **by_title).total == 0
        clock.advance(2)
        assert [r.id for r in _search(client, **by_title).results] == ["2001"]
    finally:
        hs.stop()


def test_realistic_hubspot_requests_take_the_assumed_latency():
    hs, _, sleeps, client = _hubspot()
    try:
        client.crm.contacts.basic_api.get_page(limit=1)
        _search(client, limit=1)
        assert sleeps == [0.1, 0.1]
    finally:
        hs.stop()


# ------------------------------------------------------------------ Salesforce


class Gate:
    """sleep_ms for the Salesforce emulator: the assumed latency is recorded; a `latency`
    fault of 60,000 ms holds its request until `release()` (a request that runs long)."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.open = threading.Event()

    def __call__(self, ms: float) -> None:
        self.waits.append(ms)
        if ms >= 60_000:
            assert self.open.wait(120), "a held request was never released"

    def release(self) -> None:
        self.open.set()


def _salesforce(plan: str) -> tuple[SalesforceSandbox, SfClock, Gate]:
    clock, gate = SfClock(), Gate()
    sb = SalesforceSandbox(sf_small_dataset(), clock=clock, sleep_ms=gate,
                           **profile("salesforce", plan).sandbox_kwargs()).start()
    return sb, clock, gate


def _client(sb: SalesforceSandbox) -> Salesforce:
    session = build_session(login_url=sb.url, instance_url=sb.url, ca_file=sb.ca_file)
    return Salesforce(session_id=sb.new_session(), instance_url=sb.url, session=session)


def _wait_for(condition: Any, what: str) -> None:
    done = threading.Event()
    for _ in range(1200):
        if condition():
            return
        done.wait(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_realistic_salesforce_refuses_new_requests_while_the_plans_long_running_ones_run():
    sb, clock, gate = _salesforce("developer")
    limit = SALESFORCE_PLANS["developer"].long_running_limit
    assert limit == 5
    sb.faults.add(kind="latency", route="query", ms=60_000)  # these queries run long
    threads = [threading.Thread(target=_client(sb).query, args=("SELECT Id FROM Account",))
               for _ in range(limit)]
    try:
        for t in threads:
            t.start()
        _wait_for(lambda: sb.app.in_flight >= limit, f"{limit} queries in flight")
        other = _client(sb)
        clock.advance(19)  # not long-running yet: "no limit on ... requests shorter than 20 s"
        assert other.limits()["DailyApiRequests"]["Max"] == 15_000
        clock.advance(1)  # now all of them have run 20 s
        with pytest.raises(SalesforceRefusedRequest) as e:
            other.limits()
        assert e.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
        assert "ConcurrentRequests" in e.value.content[0]["message"]
    finally:
        gate.release()
        for t in threads:
            t.join(timeout=60)
    try:
        assert other.limits()["DailyApiRequests"]["Max"] == 15_000  # fewer than 5 long ones now
    finally:
        sb.stop()


def test_realistic_salesforce_requests_take_the_assumed_latency():
    sb, _, gate = _salesforce("production")
    try:
        client = _client(sb)
        client.query("SELECT Id FROM Account")
        client.limits()
        assert gate.waits == [100.0, 100.0]
        assert sb.bulk_job_seconds == 10.0
        assert sb.usage.snapshot()[1] == 100_000
    finally:
        sb.stop()


# ------------------------------------------------------------------ the command


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What `crmsync sandbox` hands each emulator's serve_forever (nothing is served)."""
    from crmsync.sandbox import hubspot, salesforce

    seen: dict[str, Any] = {}
    monkeypatch.setattr(hubspot, "serve_forever", lambda **kw: seen.update(hubspot=kw))
    monkeypatch.setattr(salesforce, "serve_forever", lambda **kw: seen.update(salesforce=kw))
    return seen


def _sandbox(*args: str) -> Any:
    return CliRunner().invoke(cli, ["sandbox", *args, "--accounts", "1"])


def test_crmsync_sandbox_is_realistic_unless_told_otherwise(served):
    assert _sandbox("hubspot").exit_code == 0
    assert served["hubspot"]["realistic"] == HUBSPOT_PLANS["starter"]
    assert _sandbox("hubspot", "--plan", "professional", "--index-lag", "30").exit_code == 0
    chosen = served["hubspot"]["realistic"]
    assert (chosen.per_10s, chosen.index_lag_seconds) == (190, 30.0)
    assert _sandbox("salesforce", "--plan", "developer", "--latency-ms", "250").exit_code == 0
    chosen = served["salesforce"]["realistic"]
    assert (chosen.long_running_limit, chosen.latency_ms) == (5, 250.0)
    assert _sandbox("salesforce", "--unlimited").exit_code == 0
    assert served["salesforce"]["realistic"] is None


def test_crmsync_sandbox_names_the_plans_it_knows(served):
    result = _sandbox("hubspot", "--plan", "gold")
    assert result.exit_code == 2
    assert "starter, professional, enterprise" in result.output
    result = _sandbox("salesforce", "--index-lag", "3")
    assert result.exit_code == 2 and "HubSpot setting" in result.output
    result = _sandbox("hubspot", "--unlimited", "--plan", "starter")
    assert result.exit_code == 2 and "--unlimited" in result.output
    assert served == {}
