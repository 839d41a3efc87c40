"""The HubSpot connector against the HubSpot emulator, through the real hubspot-api-client.

Time is fake (one FakeTime for the emulator and the connector): no test sleeps.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta

import pytest
from test_hubspot_support import (
    FakeTime,
    connect,
    dataset,
    primary_company,
    pull_all,
    serve_dates_from,
    settings_for,
)

from crmsync.connectors.errors import CrmUnavailable, QuotaExhausted
from crmsync.connectors.hubspot import HubSpotConnector
from crmsync.connectors.retry import RetryPolicy
from crmsync.sandbox.hubspot import HubSpotSandbox
from crmsync.state.model import ObjectType

C = ObjectType.CONTACT


@pytest.fixture
def clock(monkeypatch) -> FakeTime:
    fake = FakeTime()
    serve_dates_from(monkeypatch, fake)
    return fake


def sandbox(clock: FakeTime, data=None, **kw) -> HubSpotSandbox:
    return HubSpotSandbox(
        dataset=data or dataset(), clock=clock.time, sleep=clock.sleep, **kw
    ).start()


@pytest.fixture
def big(clock):
    """10,500 contacts: past the 10,000-result search cap."""
    hs = sandbox(clock, dataset(contacts=10_500, companies=50, deals=10))
    yield hs
    hs.stop()


@pytest.fixture
def small(clock):
    hs = sandbox(clock, dataset(contacts=30, companies=3, deals=3))
    yield hs
    hs.stop()


def assert_mirrors(hs: HubSpotSandbox, records) -> None:
    want = {r["id"]: r for r in hs.records("contacts")}
    got = {r.id: r for r in records.values() if not r.deleted}
    assert set(got) == set(want)
    for rid, rec in want.items():
        v = got[rid].values
        assert v["email"] == rec["properties"].get("email")
        assert v["title"] == rec["properties"].get("jobtitle")
        assert v["account_id"] == primary_company(rec)


# ---------------------------------------------------------------- full pulls


def test_full_pull_past_10000_contacts_mirrors_exactly_at_minimum_calls(big, clock):
    c = connect(big, clock)
    big.reset()
    records, cursor, pages = pull_all(c, C, full=True)
    assert_mirrors(big, records)
    n = 10_500
    # search path minimum: ceil(n/200) searches + ceil(n/1000) contact->company reads + 1 schema
    # call, + the run's one read of the account's daily usage (max_daily_share, daily.py)
    assert big.requests.count("search") == math.ceil(n / 200) == c.calls.by_operation["search"]
    assert big.requests.count("assoc_batch_read") == math.ceil(n / 1000)
    assert big.requests.count("properties") == 1
    assert big.requests.count("account_usage") == 1
    assert big.requests.counts()["total"] == math.ceil(n / 200) + math.ceil(n / 1000) + 1 + 1
    assert pages[-1].done and set(cursor) == {"modified_ms"}


def test_full_pull_search_path_is_cheaper_than_list(clock):
    """The measurement behind pull.py's choice of the search path for full pulls."""
    n = 2_500
    hs = sandbox(clock, dataset(contacts=n, companies=20, deals=0))
    try:
        costs = {}
        for path in ("search", "list"):
            c = connect(hs, clock, full_pull=path)
            hs.reset()
            records, _, _ = pull_all(c, C, full=True)
            assert_mirrors(hs, records)
            costs[path] = hs.requests.counts()["total"]
        # + 1 schema call, + 1 read of the daily usage per run (connector)
        assert costs["list"] == math.ceil(n / 100) + 1 + 1
        assert costs["search"] == math.ceil(n / 200) + math.ceil(n / 1000) + 1 + 1
        assert costs["search"] < costs["list"]
    finally:
        hs.stop()


def test_o1_killed_full_pull_resumes_from_its_cursor(clock):
    hs = sandbox(clock, dataset(contacts=2_300, companies=5, deals=0))
    try:
        first, cursor, _ = pull_all(connect(hs, clock), C, full=True, stop_after=1)
        assert cursor["mode"] == "full" and len(first) == 1000
        hs.reset()
        rest, final, _ = pull_all(connect(hs, clock), C, cursor, full=True)
        assert_mirrors(hs, {**first, **rest})
        assert not set(first) & set(rest)  # nothing read twice
        assert final["modified_ms"] == cursor["run_start_ms"]  # cap of the original run
    finally:
        hs.stop()


def test_owners_archived_are_inactive(small, clock):
    records, _, _ = pull_all(connect(small, clock), ObjectType.OWNER, full=True)
    assert records["501"].values["active"] is True
    assert records["502"].values["active"] is False
    assert records["501"].values["name"] == "Ana Li"


def test_companies_deals_and_roles(small, clock):
    c = connect(small, clock)
    run = clock.now()
    accounts, _, _ = pull_all(c, ObjectType.ACCOUNT, full=True, started_at=run)
    assert accounts["1"].values["tier"] == "tier_1" and accounts["1"].values["owner_id"] == "501"
    deals, _, _ = pull_all(c, ObjectType.OPPORTUNITY, full=True, started_at=run)
    deal = next(d for d in deals.values() if d.values["name"] == "Deal 0")
    assert deal.values["account_id"] == "1" and deal.values["is_closed"] is False
    small.reset()
    contacts, _, _ = pull_all(c, C, full=True, started_at=run)
    roles, _, _ = pull_all(c, ObjectType.CONTACT_ROLE, full=True, started_at=run)
    # contacts: schema + search + association read; the roles pull is served from the stash
    assert small.requests.counts()["total"] == 3
    first = contacts["4"]  # contact 0: buying roles CHAMPION;BUDGET_HOLDER
    assert roles["buying_role:4:CHAMPION"].values == {
        "opportunity_id": None,
        "contact_id": "4",
        "role": "Champion",
        "is_primary": False,
    }
    assert roles["buying_role:4:BUDGET_HOLDER"].values["role"] == "Economic Buyer"
    assert roles[f"{deal.id}:4:Champion"].values["opportunity_id"] == deal.id
    assert roles[f"{deal.id}:6:Economic Buyer"].values["role"] == "Economic Buyer"
    assert not any(r.startswith(f"{deal.id}:5:") for r in roles)  # unlabeled pair: no role
    assert first.values["account_id"] == "1"


def test_contact_roles_pulled_alone_walk_deals_and_contacts(small, clock):
    c = connect(small, clock)
    roles, _, _ = pull_all(c, ObjectType.CONTACT_ROLE, full=True)
    ids = set(roles)
    c2 = connect(small, clock)
    run = clock.now()
    pull_all(c2, C, full=True, started_at=run)
    pull_all(c2, ObjectType.OPPORTUNITY, full=True, started_at=run)
    small.reset()
    stashed, _, _ = pull_all(c2, ObjectType.CONTACT_ROLE, full=True, started_at=run)
    assert small.requests.counts()["total"] == 0
    assert ids == set(stashed) and ids


# ---------------------------------------------------------------- incremental


@pytest.mark.slow  # ~20 s: 10,500 in-process updates of the emulator dominate
def test_p1_incremental_with_more_than_10000_changes(big, clock):
    c = connect(big, clock)
    _, cursor, _ = pull_all(c, C, full=True, started_at=clock.now())
    clock.sleep(3600)
    ids = [r["id"] for r in big.records("contacts")]
    for rid in ids:
        big.update("contacts", rid, {"jobtitle": "CTO"})
    big.reset()
    records, cursor2, _ = pull_all(c, C, cursor, full=False, started_at=clock.now())
    assert len(records) == len(ids) and all(r.values["title"] == "CTO" for r in records.values())
    n = len(ids)
    # no query passes 10,000 results (no 400), windows cost nothing: ceil(n/200) searches
    assert big.requests.count("search") == math.ceil(n / 200)
    assert big.requests.count("assoc_batch_read") == math.ceil(n / 1000)
    assert big.requests.count("list") == 1  # the archived listing (empty)
    assert cursor2["modified_ms"] > cursor["modified_ms"]


def test_incremental_sees_only_changes_and_caps_cursor_at_server_time(small, clock):
    c = connect(small, clock)
    _, cursor, _ = pull_all(c, C, full=True, started_at=clock.now())
    clock.sleep(3600)
    small.update("contacts", "5", {"jobtitle": "Former VP"})
    # O5: the local clock runs 10 minutes ahead; the cursor still follows HubSpot's time
    ahead = clock.now() + timedelta(minutes=10)
    records, cursor2, _ = pull_all(c, C, cursor, full=False, started_at=ahead)
    assert set(records) == {"5"} and records["5"].values["title"] == "Former VP"
    assert cursor2["modified_ms"] <= int(clock.t * 1000) - 30_000


def test_d3_archived_and_d4_merged_become_deletions(small, clock):
    c = connect(small, clock)
    _, cursor, _ = pull_all(c, C, full=True, started_at=clock.now())
    clock.sleep(3600)
    small.archive("contacts", "7")
    survivor = small.merge("contacts", "8", "9")
    records, _, _ = pull_all(c, C, cursor, full=False, started_at=clock.now())
    assert records["7"].deleted
    assert records["8"].deleted and records["8"].merged_into == survivor
    assert records["9"].deleted and records["9"].merged_into == survivor
    assert not records[survivor].deleted
    # archived before the cursor (and its lookback) are not reported again
    clock.sleep(3600)
    _, cursor2, _ = pull_all(c, C, cursor, full=False, started_at=clock.now())
    clock.sleep(3600)
    again, _, _ = pull_all(c, C, cursor2, full=False, started_at=clock.now())
    assert "7" not in again


def test_incremental_roles_delete_removed_buying_roles(small, clock):
    c = connect(small, clock)
    run = clock.now()
    _, cc, _ = pull_all(c, C, full=True, started_at=run)
    _, dc, _ = pull_all(c, ObjectType.OPPORTUNITY, full=True, started_at=run)
    _, rc, _ = pull_all(c, ObjectType.CONTACT_ROLE, full=True, started_at=run)
    clock.sleep(3600)
    small.update("contacts", "4", {"hs_buying_role": "CHAMPION"})
    run = clock.now()
    pull_all(c, C, cc, full=False, started_at=run)
    pull_all(c, ObjectType.OPPORTUNITY, dc, full=False, started_at=run)
    small.reset()
    roles, _, _ = pull_all(c, ObjectType.CONTACT_ROLE, rc, full=False, started_at=run)
    assert small.requests.counts()["total"] == 0  # served from the contact pull's stash
    assert not roles["buying_role:4:CHAMPION"].deleted
    assert roles["buying_role:4:BUDGET_HOLDER"].deleted


def test_p6_index_lag_is_covered_by_the_lookback(small, clock):
    c = connect(small, clock)
    _, cursor, _ = pull_all(c, C, full=True, started_at=clock.now())
    clock.sleep(3600)
    small.set_faults([{"kind": "index_lag", "seconds": 90}])
    small.update("contacts", "5", {"jobtitle": "Late"})
    first, cursor2, _ = pull_all(c, C, cursor, full=False, started_at=clock.now())
    assert "5" not in first  # the index has not caught up
    clock.sleep(120)
    second, _, _ = pull_all(c, C, cursor2, full=False, started_at=clock.now())
    assert second["5"].values["title"] == "Late"


def test_p2_underfilled_search_pages_keep_paging(clock):
    hs = sandbox(
        clock,
        dataset(contacts=700, companies=3, deals=0),
        faults=[{"kind": "underfilled_pages", "route": "search", "size": 37}],
    )
    try:
        records, _, _ = pull_all(connect(hs, clock), C, full=True)
        assert_mirrors(hs, records)
    finally:
        hs.stop()


def test_p10_list_pages_survive_deletes_and_inserts_at_the_head(clock):
    hs = sandbox(clock, dataset(contacts=450, companies=3, deals=0))
    try:
        c = connect(hs, clock, full_pull="list")
        seen = {}
        for i, page in enumerate(c.pull(C, None, full=True, started_at=clock.now())):
            seen.update({r.id: r for r in page.records})
            if i == 1:  # between pages: delete at the head, insert at the tail
                for rid in ("4", "5", "6"):
                    hs.archive("contacts", rid)
                hs.create("contacts", {"email": "new@c.test"})
        want = {r["id"] for r in hs.records("contacts")}
        assert want - set(seen) == set()
    finally:
        hs.stop()


def test_p3_records_archived_during_a_search_walk_lose_nothing(clock):
    hs = sandbox(clock, dataset(contacts=2_500, companies=3, deals=0))
    try:
        c = connect(hs, clock)
        seen = {}
        for i, page in enumerate(c.pull(C, None, full=True, started_at=clock.now())):
            seen.update({r.id: r for r in page.records})
            if i == 0:
                for rid in range(10, 60):
                    hs.archive("contacts", str(rid))
        assert {r["id"] for r in hs.records("contacts")} <= set(seen)
    finally:
        hs.stop()


def test_x7_deal_with_more_than_500_contacts_follows_association_paging(clock):
    data = dataset(contacts=0, companies=1, deals=0, big_company_contacts=620)
    contact_ids = [r["id"] for r in data["hubspot"]["contacts"]]
    data["hubspot"]["deals"].append(
        {
            "id": "9000",
            "properties": {"dealname": "Big", "createdate": "2025-01-01T00:00:00Z"},
            "associations": {
                "companies": [{"id": "1", "label": "primary"}],
                "contacts": [{"id": cid, "label": "Champion"} for cid in contact_ids],
            },
        }
    )
    hs = sandbox(clock, data)
    try:
        roles, _, _ = pull_all(connect(hs, clock), ObjectType.CONTACT_ROLE, full=True)
        assert len([r for r in roles if r.startswith("9000:")]) == 620
    finally:
        hs.stop()


def test_x6_property_gone_from_schema_is_tolerated_and_kept_in_raw(small, clock, caplog):
    small.add_property("contacts", "hs_lead_status")
    small.update("contacts", "4", {"hs_lead_status": "NEW"})
    c = connect(small, clock, extra_properties={"contacts": ("hs_lead_status",)})
    pull_all(c, C, full=True)  # the schema is read here, once
    small.remove_property("contacts", "hs_lead_status")
    records, _, _ = pull_all(c, C, full=True)  # still on the records: tolerated, kept in raw
    assert records["4"].raw["properties"]["hs_lead_status"] == "NEW"
    fresh = connect(small, clock, extra_properties={"contacts": ("hs_lead_status",)})
    with caplog.at_level(logging.WARNING):
        again, _, _ = pull_all(fresh, C, full=True)
        pull_all(fresh, C, full=True)
    warnings = [r for r in caplog.records if "hs_lead_status" in r.getMessage()]
    assert len(warnings) == 1  # one warning, not one per run or page
    assert again["4"].values["email"] == "p0@c.test"


# ---------------------------------------------------------------- rate limits and failures


def test_r1_search_429_with_retry_after_waits_and_retries_once(small, clock):
    small.set_faults(
        [
            {
                "kind": "rate_limit",
                "route": "search",
                "nth": 1,
                "retry_after": 2,
                "policy": "TEN_SECONDLY_ROLLING",
            }
        ]
    )
    c = connect(small, clock)
    small.reset()
    records, _, _ = pull_all(c, C, full=True)
    assert_mirrors(small, records)
    assert small.requests.count("search") == 2  # exactly one extra call
    assert c.calls.by_operation["search"] == 2
    assert max(clock.sleeps) >= 2


def test_r3_daily_limit_stops_cleanly_until_midnight(small, clock):
    small.set_faults([{"kind": "rate_limit", "route": "search", "nth": 1, "policy": "DAILY"}])
    c = connect(small, clock)
    with pytest.raises(QuotaExhausted) as err:
        pull_all(c, C, full=True)
    calls = small.requests.counts()["total"]
    with pytest.raises(QuotaExhausted):
        pull_all(c, ObjectType.ACCOUNT, full=True)
    assert small.requests.counts()["total"] == calls  # no call after the 429
    retry_at = err.value.retry_at
    assert retry_at is not None and retry_at.hour == 0 and retry_at.minute == 0
    assert timedelta(0) < retry_at - clock.now() <= timedelta(days=1, minutes=1)


def test_r3_hubspot_stops_at_its_daily_share_with_no_call_past_it_until_the_reset(small, clock):
    """[hubspot] max_daily_share (0.5 of the account's 1,000 calls): the run reads the usage
    once, counts each call, and refuses the call that would pass 500 (issue 11)."""
    resets = clock.now() + timedelta(hours=7)
    small.set_daily_usage(used=497, limit=1000, resets_at=resets)
    c = connect(small, clock)
    with pytest.raises(QuotaExhausted) as err:
        pull_all(c, C, full=True)
    assert small.limits.daily_used == 500, "every call up to the share, none past it"
    assert small.requests.count("account_usage") == 1  # read once, at the run's start
    assert err.value.code == "MAX_DAILY_SHARE"
    retry_at = err.value.retry_at
    assert retry_at is not None and abs(retry_at - resets) < timedelta(seconds=1)  # resetsAt
    assert "500/1,000" in err.value.line() and "max_daily_share" in err.value.line()
    assert (c.quota().used, c.quota().limit) == (500, 1000)
    calls = small.requests.counts()["total"]
    with pytest.raises(QuotaExhausted):
        c.check()  # reads and writes alike: nothing more this run
    assert small.requests.counts()["total"] == calls
    clock.sleep(7 * 3600 + 1)  # past the reset: a new day for the account
    records, _, _ = pull_all(connect(small, clock), C, full=True)
    assert_mirrors(small, records)


def test_r3_a_run_that_starts_over_its_share_spends_only_the_usage_read(small, clock):
    small.set_daily_usage(used=700, limit=1000)
    small.reset()
    c = connect(small, clock, max_daily_share=0.6, account_timezone="America/New_York")
    with pytest.raises(QuotaExhausted) as err:
        c.check()
    assert small.requests.counts()["by_route"] == {"GET account_usage": 1}
    # resetsAt (the sandbox's next midnight UTC) wins over the configured time zone
    assert err.value.retry_at is not None and err.value.retry_at.hour == 0


def test_without_the_usage_api_the_share_counts_from_the_daily_headers(small, clock, caplog):
    """A token that may not read the usage (403): the first answer's headers say it, once."""
    small.set_faults([{"kind": "status", "route": "account_usage", "status": 403,
                       "category": "MISSING_SCOPES"}])  # fmt: skip
    small.set_daily_usage(used=497, limit=1000)
    c = connect(small, clock)
    c.check()  # the usage read is refused; the check's own answer carries the usage
    with pytest.raises(QuotaExhausted):
        pull_all(c, C, full=True)
    assert small.limits.daily_used == 500
    assert err_free(caplog) and "may not read the account's daily API usage" in caplog.text
    # at midnight in [hubspot] account_timezone, as resetsAt is unknown
    with pytest.raises(QuotaExhausted) as err:
        c.check()
    assert err.value.retry_at is not None and err.value.retry_at.minute == 0


def test_the_share_is_not_enforced_for_oauth_apps_and_crmsync_says_so_once(small, clock, caplog):
    from test_hubspot_auth import oauth_connector

    small.set_daily_usage(used=900, limit=1000)  # OAuth calls have no daily limit (api-facts §2)
    for _ in range(2):  # two runs
        c = oauth_connector(small, clock)
        records, _, _ = pull_all(c, C, full=True)
        assert_mirrors(small, records)
        assert c.quota().used is None
    assert small.requests.count("account_usage") == 0
    told = [r for r in caplog.records if "not enforced for OAuth apps" in r.getMessage()]
    assert len(told) == 1


def err_free(caplog) -> bool:
    return not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_r4_limiter_keeps_zero_429s_against_enforced_windows(clock):
    hs = sandbox(
        clock,
        dataset(contacts=50, companies=2, deals=0),
        rate_limits={"per_10s": 100, "search_per_second": 4},
    )
    try:
        c = connect(hs, clock, requests_per_10s=100, searches_per_second=4)
        c.ensure_fields(dry_run=False)  # crmsync_key, so task searches run
        hs.reset()
        start = clock.t
        for i in range(2_000):
            if i % 5 == 0:
                c.find_tasks_by_keys([f"k{i}"])
            else:  # a cheap general call (check() reads the daily usage, once a run)
                c.client.call("check", "crm.owners.owners_api", "get_page", limit=1)
        # every call went through first time: a 429 would have cost a retry call
        assert c.calls.by_operation["check"] == 1_600
        assert c.calls.by_operation["search"] == 400
        assert hs.requests.counts()["total"] == 2_001  # + one read of the tasks schema
        # and the limiter did not dawdle: 1,600 general calls at 100/10 s need ~160 s (plus the pauses the Secondly headers ask for)
        assert clock.t - start < 240
    finally:
        hs.stop()


def test_r7_5xx_bursts_are_retried_and_the_pull_is_complete(clock):
    hs = sandbox(
        clock,
        dataset(contacts=1_200, companies=5, deals=2),
        faults={
            "seed": 3,
            "rules": [
                {"kind": "status", "status": 503, "probability": 0.25},
                {"kind": "status", "status": 502, "nth": 2},
            ],
        },
    )
    try:
        c = connect(hs, clock)
        records, _, _ = pull_all(c, C, full=True)
        assert_mirrors(hs, records)
        assert c.calls.total == hs.requests.counts()["total"]
    finally:
        hs.stop()


def test_r8_permanent_503_fails_within_the_retry_budget(small, clock):
    small.set_faults([{"kind": "status", "status": 503, "route": "search"}])
    c = connect(small, clock, policy=RetryPolicy(max_attempts=4, max_elapsed_seconds=60))
    with pytest.raises(CrmUnavailable) as err:
        pull_all(c, C, full=True)
    assert err.value.status == 503
    assert small.requests.count("search") == 4
    assert sum(clock.sleeps) <= 60


def test_unreachable_host_is_crm_unavailable(clock):
    hs = HubSpotSandbox().start()
    settings = settings_for(hs)
    hs.stop()
    c = HubSpotConnector(
        settings, sleep=clock.sleep, clock=clock.time, policy=RetryPolicy(max_attempts=2)
    )
    with pytest.raises(CrmUnavailable):
        c.check()
    # Two attempts in one budget; each fails at the run's first request, the daily usage read.
    assert c.calls.total == 2 and c.calls.by_operation["daily_usage"] == 2


def test_p3_record_modified_behind_the_walk_is_caught_next_run(clock):
    hs = sandbox(clock, dataset(contacts=1_500, companies=3, deals=0))
    try:
        c = connect(hs, clock)
        _, cursor, _ = pull_all(c, C, full=True, started_at=clock.now())
        clock.sleep(3600)
        for rid in range(4, 1504):
            hs.update("contacts", str(rid), {"jobtitle": "Head of Ops"})
        seen = {}
        for i, page in enumerate(c.pull(C, cursor, full=False, started_at=clock.now())):
            seen.update({r.id: r for r in page.records})
            cursor = page.cursor
            if i == 0:  # behind the walk's position: a later run must catch it
                clock.sleep(1)
                hs.update("contacts", "10", {"jobtitle": "Changed mid-run"})
        clock.sleep(600)
        after, _, _ = pull_all(c, C, cursor, full=False, started_at=clock.now())
        assert after["10"].values["title"] == "Changed mid-run"
        assert len(seen) == 1_500
    finally:
        hs.stop()


def test_x1_x3_unicode_and_large_values_survive(small, clock):
    odd = 'Zoë Köln 東京 مرحبا e\u0301 🙂 "quoted"\r\nline'
    big_text = "x" * 100_000
    small.add_property("contacts", "notes_big")
    small.update("contacts", "4", {"firstname": odd, "notes_big": big_text})
    c = connect(small, clock, extra_properties={"contacts": ("notes_big",)})
    records, _, _ = pull_all(c, C, full=True)
    assert records["4"].values["first_name"] == odd
    assert records["4"].raw["properties"]["notes_big"] == big_text


def test_quota_reads_the_daily_headers(small, clock):
    c = connect(small, clock)
    c.check()
    q = c.quota()
    assert q.limit == small.limits.daily and q.used == small.limits.daily_used


def test_x7_list_path_follows_inline_association_paging(clock):
    data = dataset(contacts=3, companies=150, deals=0)
    data["hubspot"]["contacts"][0]["associations"] = {
        "companies": [
            {"id": str(i), "label": "primary" if i == 77 else None} for i in range(1, 151)
        ]
    }
    hs = sandbox(clock, data)
    try:
        c = connect(hs, clock, full_pull="list")
        records, _, _ = pull_all(c, C, full=True)
        first = records[data["hubspot"]["contacts"][0]["id"]]
        assert len(first.raw["associations"]["companies"]) == 150
        assert first.values["account_id"] == "77"
        assert hs.requests.count("assoc_list") >= 1
    finally:
        hs.stop()


def test_p4_thousands_of_identical_modified_dates_across_pages(clock):
    hs = sandbox(clock, dataset(contacts=2_500, companies=3, deals=0))  # all modified at OLD
    try:
        c = connect(hs, clock)
        old_ms = int(datetime(2025, 1, 15, 10, tzinfo=UTC).timestamp() * 1000)
        pages = list(c.pull(C, {"modified_ms": old_ms}, full=False, started_at=clock.now()))
        ids = [r.id for p in pages for r in p.records]
        assert len(ids) == len(set(ids)) == 2_500  # none skipped, none twice
    finally:
        hs.stop()
