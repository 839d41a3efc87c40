"""Salesforce connector end to end: real simple-salesforce over TLS to the loopback sandbox.

A generated org (300 accounts, ~3,000 contacts) is pulled in full and
incrementally; pages are collected into a dict "mirror" (a stand-in for
state/, which dedupes by id) and compared with the sandbox's own records and
with a fresh full pull (FFP). Faults are injected by the sandbox; API calls
are counted by the connector and checked against the sandbox's request log
and against the minimum the page and batch sizes allow (docs/budgets.md).
"""

from __future__ import annotations

import copy
import logging
import math
from datetime import UTC, datetime, timedelta

import pytest

from crmsync.connectors.base import Secret
from crmsync.connectors.errors import AuthFailed, CrmUnavailable, QuotaExhausted
from crmsync.connectors.retry import RetryPolicy
from crmsync.connectors.salesforce import SalesforceConnector, Settings
from crmsync.sandbox.generate import generate
from crmsync.sandbox.salesforce import PASSWORD, SECURITY_TOKEN, USERNAME, SalesforceSandbox
from crmsync.state.model import PULL_ORDER, CrmRecord, ObjectType, OutboxItem, WriteKind
from tests.clock import crm_now

DATA = generate(seed=7, accounts=300, crms=("salesforce",))
SF = DATA["salesforce"]
TIE_STAMP = "2026-10-31T23:59:59.000+0000"  # newer than anything else in the dataset
TIED = [c["Id"] for c in SF["Contact"][:2500]]
TIE_DATA = copy.deepcopy(DATA)
for _c in TIE_DATA["salesforce"]["Contact"][:2500]:
    _c["SystemModstamp"] = _c["LastModifiedDate"] = TIE_STAMP

SOBJECT = {
    ObjectType.OWNER: "User",
    ObjectType.ACCOUNT: "Account",
    ObjectType.CONTACT: "Contact",
    ObjectType.OPPORTUNITY: "Opportunity",
    ObjectType.CONTACT_ROLE: "OpportunityContactRole",
    ObjectType.TASK: "Task",
}
QUERY_ROUTES = ("query", "query_all", "query_more")


@pytest.fixture(scope="module")
def sandbox():
    with SalesforceSandbox(DATA).start() as sb:
        yield sb


@pytest.fixture
def sb(sandbox):
    sandbox.reset(DATA)
    sandbox.bulk_job_seconds = 0.0
    return sandbox


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make(sb, **kw) -> SalesforceConnector:
    base = dict(
        login_url=sb.url,
        instance_url=sb.url,
        ca_file=sb.ca_file,
        username=USERNAME,
        password=Secret(PASSWORD, "test"),
        security_token=Secret(SECURITY_TOKEN, "test"),
        extra_fields={"Contact": ["Department"]},
    )
    base.update(kw)
    policy = RetryPolicy(max_attempts=5, max_elapsed_seconds=120)
    conn = SalesforceConnector(Settings(**base), sleep=Sleeps(), retry=policy)
    conn.sleeps = conn.puller.sleep = conn.client.sleep  # one recorder for retries and bulk polls
    return conn


def now() -> datetime:
    """The sandbox's server clock (tests/clock.py)."""
    return crm_now()


def collect(conn, obj, cursor=None, *, full=True, mirror=None):
    """Apply a pull's pages to a dict mirror (upsert by id); return (mirror, last cursor)."""
    mirror = {} if mirror is None else mirror
    cursor_out = cursor
    for page in conn.pull(obj, cursor, full=full, started_at=now()):
        for record in page.records:
            mirror[record.id] = record
        cursor_out = page.cursor
    return mirror, cursor_out


def live(mirror: dict[str, CrmRecord]) -> dict[str, dict]:
    return {i: dict(r.values) for i, r in mirror.items() if not r.deleted}


def sandbox_live(sb, obj: ObjectType) -> dict[str, dict]:
    return {r["Id"]: r for r in sb.records(SOBJECT[obj]) if not r.get("IsDeleted")}


def query_requests(sb) -> int:
    return sum(sb.requests.count(route=r) for r in QUERY_ROUTES)


# ------------------------------------------------------------------ full pulls


def test_full_pull_rest_mirrors_every_record_with_the_minimum_calls(sb):
    conn = make(sb)
    expected_queries = 0
    for obj in PULL_ORDER:
        mirror, cursor = collect(conn, obj)
        want = sandbox_live(sb, obj)
        if obj is ObjectType.TASK:  # no Crmsync_Key__c until `crmsync setup`: nothing to pull
            assert mirror == {} and conn.stats[obj].mode == "skipped"
            continue
        assert set(mirror) == set(want), obj
        assert cursor["mode"] == "incremental" and cursor["watermark"]
        expected_queries += max(1, math.ceil(len(want) / 2000))
    contacts = live(collect(conn, ObjectType.CONTACT)[0])
    for cid, rec in sandbox_live(sb, ObjectType.CONTACT).items():
        got = contacts[cid]
        assert (got["email"], got["title"], got["account_id"], got["email_bounced"]) == (
            rec["Email"],
            rec["Title"],
            rec["AccountId"],
            rec["IsEmailBounced"],
        )
        assert got["last_activity_at"] == (
            datetime.fromisoformat(rec["LastActivityDate"]).replace(tzinfo=UTC)
            if rec.get("LastActivityDate")
            else None
        )
    expected_queries += math.ceil(len(contacts) / 2000)
    assert conn.calls.by_operation["query"] == expected_queries == query_requests(sb)
    assert conn.calls.by_operation["describe"] == 6  # once per object, never again
    assert conn.calls.by_operation["auth"] == 1 == sb.requests.count(route="login")
    assert conn.quota().used == conn.calls.total


@pytest.mark.parametrize("max_records, chunks", [(50_000, 1), (1_000, 4)])
def test_full_pull_bulk_costs_create_poll_results_delete(sb, max_records, chunks):
    conn = make(sb, bulk="always", bulk_max_records=max_records)
    mirror, cursor = collect(conn, ObjectType.CONTACT)
    rest = live(collect(make(sb, bulk="never"), ObjectType.CONTACT)[0])
    assert live(mirror) == rest  # same canonical values from CSV as from REST JSON
    assert conn.calls.by_operation["bulk"] == 1 + 1 + chunks + 1
    assert sb.requests.count(route="bulk2_query_*") == 1 + 1 + chunks + 1
    assert conn.sleeps == [0.5]  # our own schedule: one short poll for a job done at once
    assert sb.bulk.jobs == {}  # deleted, no orphan job
    assert cursor["mode"] == "incremental"


def test_auto_stays_on_rest_when_bulk_would_cost_more(sb):
    conn = make(sb, bulk="auto")
    collect(conn, ObjectType.CONTACT)
    assert conn.stats[ObjectType.CONTACT].path == "rest"
    assert conn.calls.by_operation["query"] == math.ceil(
        len(sandbox_live(sb, ObjectType.CONTACT)) / 2000
    )


def test_auto_moves_a_large_object_to_bulk_after_the_first_page():
    big = generate(seed=8, accounts=1000, contacts_per_account=20, crms=("salesforce",))
    with SalesforceSandbox(big).start() as sb:
        conn = make(sb, bulk="auto")
        mirror, _ = collect(conn, ObjectType.CONTACT)
        n = len(sandbox_live(sb, ObjectType.CONTACT))
        assert n > 18_000 and set(live(mirror)) == set(sandbox_live(sb, ObjectType.CONTACT))
        assert conn.stats[ObjectType.CONTACT].path == "rest+bulk"
        # 1 REST page (its totalSize sizes the object) + create + 1 poll + 1 result page + delete,
        # against ceil(n / 2000) = 10 calls for REST alone
        assert conn.calls.by_operation["query"] == 1 and conn.calls.by_operation["bulk"] == 4
        assert 1 + 4 < math.ceil(n / 2000)


def test_killed_full_pull_resumes_from_its_last_page(sb):
    conn = make(sb)
    pages = conn.pull(ObjectType.CONTACT, None, full=True, started_at=now())
    first = next(pages)
    pages.close()  # killed after the first page was committed
    mirror = {r.id: r for r in first.records}
    mirror, cursor = collect(make(sb), ObjectType.CONTACT, first.cursor, full=True, mirror=mirror)
    assert set(live(mirror)) == set(sandbox_live(sb, ObjectType.CONTACT))
    assert cursor["mode"] == "incremental"


# ------------------------------------------------------------------ incremental


def test_incremental_after_changes_equals_a_fresh_full_pull(sb):
    conn = make(sb)
    mirror, cursor = collect(conn, ObjectType.CONTACT)
    ids = sorted(sandbox_live(sb, ObjectType.CONTACT))
    for cid in ids[:5]:
        sb.update("Contact", cid, {"Title": "Former VP"})
    sb.delete("Contact", ids[10])
    sb.merge("Contact", ids[20], [ids[21]])
    new_id = sb.create("Contact", {"LastName": "Newcomer", "AccountId": SF["Account"][0]["Id"]})
    before = conn.calls.by_operation["query"]

    mirror, cursor2 = collect(conn, ObjectType.CONTACT, cursor, full=False, mirror=mirror)
    fresh = live(collect(make(sb), ObjectType.CONTACT)[0])
    assert live(mirror) == fresh
    assert mirror[ids[10]].deleted and mirror[ids[21]].merged_into == ids[20]
    assert mirror[new_id].values["last_name"] == "Newcomer"
    assert conn.calls.by_operation["query"] - before == 1  # in proportion to the changes
    assert cursor2["watermark"] >= cursor["watermark"]


def test_p4_rows_sharing_the_cursor_stamp_are_not_skipped_across_pages(sandbox):
    sandbox.reset(TIE_DATA)
    conn = make(sandbox)
    start = {"mode": "incremental", "watermark": "2026-10-31T00:00:00+00:00"}
    pages = conn.pull(ObjectType.CONTACT, start, full=False, started_at=now())
    first = next(pages)
    pages.close()  # killed mid-tie: 2,000 of 2,500 rows sharing one SystemModstamp committed
    assert len(first.records) == 2000
    seen = {r.id for r in first.records}
    mirror, _ = collect(make(sandbox), ObjectType.CONTACT, first.cursor, full=False)
    seen |= set(mirror)
    assert set(TIED) <= seen


def test_p3_record_modified_while_the_full_pull_runs_is_caught_next_run(sb):
    conn = make(sb)
    ids = sorted(sandbox_live(sb, ObjectType.CONTACT))
    mirror: dict[str, CrmRecord] = {}
    cursor = None
    for n, page in enumerate(conn.pull(ObjectType.CONTACT, None, full=True, started_at=now())):
        mirror.update({r.id: r for r in page.records})
        cursor = page.cursor
        if n == 0:
            sb.update("Contact", ids[0], {"Title": "Changed mid-pull"})  # already passed
    assert mirror[ids[0]].values["title"] != "Changed mid-pull"
    mirror, _ = collect(conn, ObjectType.CONTACT, cursor, full=False, mirror=mirror)
    assert mirror[ids[0]].values["title"] == "Changed mid-pull"


def test_d2_purged_rows_are_found_by_reconcile(sb):
    conn = make(sb)
    mirror, cursor = collect(conn, ObjectType.ACCOUNT)
    gone = sorted(mirror)[3]
    sb.delete("Account", gone)
    sb.purge("Account", gone)
    mirror, _ = collect(conn, ObjectType.ACCOUNT, cursor, full=False, mirror=mirror)
    assert not mirror[gone].deleted  # queryAll cannot see a purged row
    deletions = [r for p in conn.reconcile(ObjectType.ACCOUNT, mirror) for r in p.records]
    assert [(r.id, r.deleted) for r in deletions] == [(gone, True)]


# ------------------------------------------------------------------ auth and sessions


def test_a2_session_expiry_between_pages_is_renewed(sb):
    sb.faults.add(kind="expire_session", route="query_more", nth=1)
    conn = make(sb)
    mirror, _ = collect(conn, ObjectType.CONTACT)
    assert set(live(mirror)) == set(sandbox_live(sb, ObjectType.CONTACT))
    assert conn.calls.by_operation["auth"] == 2  # the re-login, never counted as a query
    assert conn.calls.by_operation["query"] == 3  # 2 pages + the one refused with 401


def test_a2_session_expiry_during_a_bulk_poll_is_renewed(sb):
    sb.faults.add(kind="expire_session", route="bulk2_query_poll", nth=1)
    conn = make(sb, bulk="always")
    mirror, _ = collect(conn, ObjectType.CONTACT)
    assert set(live(mirror)) == set(sandbox_live(sb, ObjectType.CONTACT))
    assert conn.calls.by_operation["auth"] == 2
    assert sb.requests.count(route="bulk2_query_delete") == 1


def test_session_auth_cannot_renew_and_fails_as_auth_failed(sb):
    conn = make(sb, auth="session", session_id=Secret(sb.new_session()), password=None)
    collect(conn, ObjectType.OWNER)
    sb.expire_sessions()
    with pytest.raises(AuthFailed):
        collect(conn, ObjectType.ACCOUNT)


@pytest.mark.parametrize(
    "auth, extra",
    [
        ("oauth_password", {}),
        ("client_credentials", {}),
        ("jwt", {}),
    ],
)
def test_every_login_mode_reaches_the_sandbox(sb, auth, extra):
    from crmsync.sandbox.salesforce import CONSUMER_KEY, CONSUMER_SECRET

    conn = make(
        sb,
        auth=auth,
        consumer_key=CONSUMER_KEY,
        consumer_secret=Secret(CONSUMER_SECRET),
        private_key_file=sb.jwt_key_file,
        **extra,
    )
    mirror, _ = collect(conn, ObjectType.OWNER)
    assert set(mirror) == set(sandbox_live(sb, ObjectType.OWNER))


def test_wrong_password_is_auth_failed_without_retries(sb):
    conn = make(sb, password=Secret("wrong"))
    with pytest.raises(AuthFailed):
        conn.check()
    assert sb.requests.count(route="login") == 1


# ------------------------------------------------------------------ limits and faults


def test_r5_request_limit_exceeded_stops_with_at_most_one_call_after(sb):
    # the org's allocation is spent by others mid-pull: the next page gets 403 TotalRequests
    sb.faults.add(kind="quota", route="query_more", nth=1, used=100_000, max=100_000)
    conn = make(sb)
    got = []
    with pytest.raises(QuotaExhausted) as info:
        for obj in PULL_ORDER:
            for page in conn.pull(obj, None, full=True, started_at=now()):
                got.append(page)
    assert info.value.code == "REQUEST_LIMIT_EXCEEDED" and info.value.retry_at
    assert sb.requests.count(route="query_more") == 1  # the 403 was not retried
    after = sb.requests.counts()["total"]
    with pytest.raises(QuotaExhausted):
        collect(conn, ObjectType.OPPORTUNITY)
    assert sb.requests.counts()["total"] == after  # not one call after the 403
    assert got[-1].object is ObjectType.CONTACT and got[-1].cursor["mode"] == "full"  # resumable


def test_r6_limit_info_near_the_share_stops_before_passing_it(sb):
    sb.set_api_usage(used=49_990, max=100_000)
    conn = make(sb)  # max_daily_share = 0.5
    with pytest.raises(QuotaExhausted, match="50,000/100,000"):
        for obj in PULL_ORDER:
            collect(conn, obj)
    assert sb.usage.snapshot()[0] == 50_000  # not one call past the share
    assert conn.quota().used == 50_000


def test_r7_5xx_bursts_and_cut_bodies_are_retried_to_a_complete_mirror(sb):
    sb.faults.load(
        {
            "seed": 3,
            "rules": [
                {"kind": "status", "status": 503, "route": "query*", "probability": 0.3},
                {"kind": "status", "status": 500, "route": "sobject_describe", "nth": 1},
                {"kind": "drop_connection", "route": "query_more", "nth": 1, "bytes": 300},
            ],
        }
    )
    conn = make(sb)
    mirror, _ = collect(conn, ObjectType.CONTACT)
    sb.faults.clear()
    assert live(mirror) == live(collect(make(sb), ObjectType.CONTACT)[0])
    assert conn.sleeps  # the retries waited (on the fake clock)


def test_r9_concurrent_request_limit_backs_off_and_continues(sb):
    sb.faults.add(kind="concurrent_limit", route="query*", limit=0, times=2)
    conn = make(sb)
    mirror, _ = collect(conn, ObjectType.CONTACT)
    assert set(live(mirror)) == set(sandbox_live(sb, ObjectType.CONTACT))
    assert len(conn.sleeps) == 2 and conn.calls.by_operation["query"] == 4


def test_r8_permanent_503_fails_named_within_the_retry_budget(sb):
    sb.faults.add(kind="status", status=503, route="query")
    conn = make(sb)
    with pytest.raises(CrmUnavailable, match="503"):
        collect(conn, ObjectType.ACCOUNT)
    assert sb.requests.count(route="query") == 5  # max_attempts
    assert sum(conn.sleeps) <= 120


def test_p9_failed_bulk_job_falls_back_to_rest_and_leaves_no_job(sb):
    sb.faults.add(kind="bulk_job_state", state="Failed", message="Internal error")
    conn = make(sb, bulk="always")
    mirror, _ = collect(conn, ObjectType.CONTACT)
    assert set(live(mirror)) == set(sandbox_live(sb, ObjectType.CONTACT))
    assert conn.stats[ObjectType.CONTACT].path == "bulk->rest"
    assert sb.requests.count(route="bulk2_query_delete") == 1
    assert sb.bulk.jobs == {}


def test_p9_bulk_job_that_never_completes_is_aborted_within_the_bound(sb):
    sb.faults.add(kind="bulk_job_state", state="InProgress")
    conn = make(sb, bulk="always", bulk_max_wait_seconds=120)
    mirror, _ = collect(conn, ObjectType.CONTACT)
    assert set(live(mirror)) == set(sandbox_live(sb, ObjectType.CONTACT))
    assert sum(conn.sleeps) <= 120
    assert sb.requests.count(route="bulk2_query_abort") == 1
    assert sb.requests.count(route="bulk2_query_delete") == 1


def test_p8_query_timeout_splits_the_window(sb):
    conn = make(sb)
    _, cursor = collect(conn, ObjectType.CONTACT)
    wide = {"mode": "incremental", "watermark": "2026-01-01T00:00:00+00:00"}
    sb.faults.add(kind="query_timeout", route="query_all", window_days=60)
    mirror, _ = collect(conn, ObjectType.CONTACT, wide, full=False)
    want = {
        i
        for i, r in sandbox_live(sb, ObjectType.CONTACT).items()
        if r["SystemModstamp"] >= "2025-12-31T23:55"
    }
    assert want <= set(mirror)
    assert conn.stats[ObjectType.CONTACT].windows_split >= 1


# ------------------------------------------------------------------ schema and data shape


def test_x5_field_removed_is_left_out_with_a_warning(sb, caplog):
    sb.remove_field("Contact", "Title")
    conn = make(sb)
    with caplog.at_level(logging.WARNING, logger="crmsync.connectors.salesforce.pull"):
        mirror, _ = collect(conn, ObjectType.CONTACT)
    assert all(r.values["title"] is None for r in mirror.values())
    assert any("Title" in getattr(r, "fields", []) for r in caplog.records)


def test_x5_field_removed_mid_run_is_redescribed_not_a_crash(sb):
    conn = make(sb)
    collect(conn, ObjectType.CONTACT)
    sb.remove_field("Contact", "Department")
    mirror, _ = collect(conn, ObjectType.CONTACT)
    assert len(live(mirror)) == len(sandbox_live(sb, ObjectType.CONTACT))
    assert conn.calls.by_operation["describe"] == 2


def test_x8_odd_values_are_stored_or_warned_never_a_crash(sb, caplog):
    sb.add_field("Contact", "Long_Notes__c", "LongTextArea", length=131_072)
    account = SF["Account"][0]["Id"]
    sb.update("Account", account, {"Tier__c": "Platinum"})
    contact = SF["Contact"][0]["Id"]
    odd = "Köln 北京 مرحبا e\u0301 🚀"
    sb.update("Contact", contact, {"Title": odd, "Long_Notes__c": "x" * 131_072})
    conn = make(sb, extra_fields={"Contact": ["Long_Notes__c"]}, bulk="always")
    role = SF["OpportunityContactRole"][0]["Id"]
    sb.update("OpportunityContactRole", role, {"Role": "Chief Vibes Officer"})
    with caplog.at_level(logging.WARNING):
        accounts, _ = collect(conn, ObjectType.ACCOUNT)
        contacts, _ = collect(conn, ObjectType.CONTACT)  # Bulk CSV: a 128 KiB cell must parse
        roles, _ = collect(conn, ObjectType.CONTACT_ROLE)
    assert accounts[account].values["tier"] == "Platinum"  # stored raw; rules map tiers
    assert contacts[contact].values["title"] == odd
    assert len(contacts[contact].raw["Long_Notes__c"]) == 131_072
    assert roles[role].values["role"] == "Chief Vibes Officer"  # stored, and warned about
    assert conn.stats[ObjectType.CONTACT_ROLE].problems["Role: unknown picklist value"] >= 1
    warned = [
        r
        for r in caplog.records
        if r.getMessage().startswith("salesforce OpportunityContactRole.Role")
    ]
    assert len(warned) == 1  # one warning per field and problem per run, not one per page


# ------------------------------------------------------------------ setup and writes


def test_setup_creates_fields_once_and_writes_land(sb):
    conn = make(sb)
    first = conn.ensure_fields(dry_run=False)
    assert {c.status for c in first} == {"created"}
    second = make(sb).ensure_fields(dry_run=False)
    assert {c.status for c in second} == {"exists"}
    account, contact = SF["Account"][0]["Id"], SF["Contact"][0]["Id"]
    owner = SF["User"][0]["Id"]
    batch = [
        OutboxItem(
            1,
            "salesforce",
            WriteKind.UPDATE_ACCOUNT,
            "a1",
            account,
            {"coverage_score": 42, "coverage_status": "amber"},
        ),
        OutboxItem(
            2,
            "salesforce",
            WriteKind.UPDATE_CONTACT,
            "c1",
            contact,
            {"status": "stale", "reason": "No activity since 3 March 2026."},
        ),
        OutboxItem(
            3,
            "salesforce",
            WriteKind.CREATE_TASK,
            "departed:1",
            None,
            {
                "subject": "Find a new champion",
                "owner_id": owner,
                "account_id": account,
                "contact_id": contact,
                "priority": "high",
                "due_date": "2026-12-01",
            },
        ),
    ]
    conn = make(sb)
    assert [r.ok for r in conn.write(batch)] == [True, True, True]
    again = conn.write(batch)  # W4: a retry after a lost answer updates, never duplicates
    assert all(r.ok for r in again)
    tasks = [t for t in sb.records("Task") if t.get("Crmsync_Key__c") == "departed:1"]
    assert len(tasks) == 1 and tasks[0]["Priority"] == "High"
    assert sb.record("Account", account)["Crmsync_Coverage_Score__c"] == 42
    found = conn.find_tasks_by_keys(["departed:1", "nope"])
    assert list(found) == ["departed:1"] and found["departed:1"].id == tasks[0]["Id"]
    mirror, _ = collect(make(sb), ObjectType.TASK)
    assert [r.values["key"] for r in mirror.values()] == ["departed:1"]
    accounts, _ = collect(make(sb), ObjectType.ACCOUNT)
    assert accounts[account].owned["coverage_score"] == 42


def test_w1_rejected_row_is_reported_and_the_rest_lands(sb):
    make(sb).ensure_fields(dry_run=False)
    contacts = [c["Id"] for c in SF["Contact"][:3]]
    sb.faults.add(
        kind="reject_write",
        match={"object": "Contact", "id": contacts[1]},
        code="FIELD_CUSTOM_VALIDATION_EXCEPTION",
        message="Status is locked",
    )
    sb.faults.add(
        kind="reject_write",
        match={"object": "Contact", "id": contacts[2]},
        code="UNABLE_TO_LOCK_ROW",
        message="unable to obtain exclusive access",
        times=1,
    )
    batch = [
        OutboxItem(n, "salesforce", WriteKind.UPDATE_CONTACT, f"c{n}", cid, {"status": "bouncing"})
        for n, cid in enumerate(contacts)
    ]
    conn = make(sb)
    ok, invalid, locked = conn.write(batch)
    assert ok.ok and not invalid.ok and not locked.ok
    assert invalid.code == "FIELD_CUSTOM_VALIDATION_EXCEPTION" and not invalid.retryable
    assert "Status is locked" in invalid.detail
    assert locked.retryable
    assert sb.record("Contact", contacts[0])["Crmsync_Status__c"] == "bouncing"
    assert conn.write([batch[2]])[0].ok  # the lock was transient
    assert conn.calls.by_operation["composite"] == 2


def test_dry_run_setup_makes_no_write(sb):
    checks = make(sb).ensure_fields(dry_run=True)
    assert {c.status for c in checks} == {"missing"}
    assert sb.requests.count(route="tooling") == 0


def test_incremental_cursor_stays_behind_server_time(sb):
    conn = make(sb)
    cid = SF["Contact"][0]["Id"]
    _, cursor = collect(conn, ObjectType.CONTACT)
    sb.update("Contact", cid, {"Title": "Just now"})
    _, cursor = collect(conn, ObjectType.CONTACT, cursor, full=False)
    assert datetime.fromisoformat(cursor["watermark"]) <= now() - timedelta(seconds=59)


@pytest.mark.parametrize("skew_minutes", [-10, 10])
def test_o5_local_clock_skew_does_not_move_cursors(sb, skew_minutes):
    conn = make(sb)
    local = now() + timedelta(minutes=skew_minutes)  # the machine's clock is 10 minutes off
    _, cursor = collect(conn, ObjectType.CONTACT)
    sb.update("Contact", SF["Contact"][0]["Id"], {"Title": "Touched"})
    pages = list(conn.pull(ObjectType.CONTACT, cursor, full=False, started_at=local))
    server = conn.client.server_time
    assert server is not None and abs((server - now()).total_seconds()) < 5
    watermark = datetime.fromisoformat(pages[-1].cursor["watermark"])
    assert watermark <= server - timedelta(seconds=60)  # from the server's Date, not our clock
    assert any(r.id == SF["Contact"][0]["Id"] for p in pages for r in p.records)


def test_x8_generated_bad_records_are_stored_or_skipped(sandbox, caplog):
    bad = generate(seed=7, accounts=30, crms=("salesforce",), bad_records=True)
    sandbox.reset(bad)  # the emulator must hold the bad values: they are what X8 is about
    try:
        extra = {"Contact": ["Department", "Description", "Last_Contacted__c"]}
        conn = make(sandbox, extra_fields=extra)
        mirrors = {}
        with caplog.at_level(logging.WARNING):
            for obj in PULL_ORDER:
                mirrors[SOBJECT[obj]] = collect(conn, obj)[0]
        for case in bad["manifest"]["salesforce"]["bad_records"]:
            record = mirrors[case["object"]][case["id"]]  # stored, not dropped
            assert (
                record.raw[case["field"]]
                == sandbox.record(case["object"], case["id"])[case["field"]]
            )
        assert conn.stats[ObjectType.CONTACT_ROLE].problems["Role: unknown picklist value"] >= 1
        assert sum(s.malformed for s in conn.stats.values()) == 0
    finally:
        sandbox.reset(DATA)


def test_plain_http_loopback_instance_is_routed():
    small = generate(seed=9, accounts=5, crms=("salesforce",))
    with SalesforceSandbox(small, tls=False).start() as sb:
        assert sb.url.startswith("http://")
        conn = make(sb, ca_file="")
        mirror, _ = collect(conn, ObjectType.ACCOUNT)
        assert set(mirror) == set(sandbox_live(sb, ObjectType.ACCOUNT))


def test_composite_pages_cut_query_calls_and_mirror_the_same(sb):
    conn = make(sb, composite_pages=5)
    mirror, _ = collect(conn, ObjectType.CONTACT)
    assert live(mirror) == live(collect(make(sb), ObjectType.CONTACT)[0])
    pages = math.ceil(len(sandbox_live(sb, ObjectType.CONTACT)) / 2000)
    # first page alone (its totalSize sizes the chain), then ceil((pages - 1) / 5) chained calls
    assert conn.calls.by_operation["query"] == 1
    assert conn.calls.by_operation["composite"] == math.ceil((pages - 1) / 5)
    assert sb.requests.count(route="composite") == conn.calls.by_operation["composite"]


# ------------------------------------------------------------------ issue 12: real-world fidelity


class MovableClock:
    """The sandbox's clock: the CRM server's time plus what a test moved it by."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return crm_now() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


class ClockSleeps(Sleeps):
    """The connector's sleep: recorded, and the sandbox's clock moves by it (no real wait)."""

    def __init__(self, clock: MovableClock) -> None:
        super().__init__()
        self.clock = clock

    def __call__(self, seconds: float) -> None:
        super().__call__(seconds)
        self.clock.advance(seconds)


SMALL = generate(seed=11, accounts=20, crms=("salesforce",))


@pytest.fixture
def timed():
    """A small org on a movable clock; the connector's sleeps move it."""
    clock = MovableClock()
    with SalesforceSandbox(SMALL, clock=clock).start() as sandbox:
        yield sandbox, clock


def sleeping(conn: SalesforceConnector, clock: MovableClock) -> SalesforceConnector:
    conn.sleeps = conn.puller.sleep = conn.client.sleep = ClockSleeps(clock)
    return conn


# job duration (s) -> polls, per the schedule 0.5, 1, 2, 4, 8, 16, 30, 30 ... (cumulative
# 0.5, 1.5, 3.5, 7.5, 15.5, 31.5, 61.5, 91.5, ...)
POLLS_BY_DURATION = {0: 1, 1: 2, 3: 3, 10: 5, 30: 6, 60: 7, 300: 15}


@pytest.mark.parametrize("seconds, polls", sorted(POLLS_BY_DURATION.items()))
def test_bulk_polls_start_short_and_back_off_with_the_job_duration(timed, seconds, polls):
    """Bulk 2.0 jobs run UploadComplete -> InProgress -> JobComplete (api-facts §9): the
    connector polls at 0.5 s first (issue 14: it used to wait 2 s even for a job already
    done), doubling to every 30 s, and never waits more than the job took again (or 0.5 s)."""
    sb, clock = timed
    sb.bulk_job_seconds = seconds
    conn = sleeping(make(sb, bulk="always"), clock)
    mirror, _ = collect(conn, ObjectType.CONTACT)
    assert set(live(mirror)) == set(sandbox_live(sb, ObjectType.CONTACT))
    assert conn.stats[ObjectType.CONTACT].path == "bulk"  # no fallback: the job was waited for
    assert sb.requests.count(route="bulk2_query_poll") == polls
    assert sb.requests.count(route="bulk2_query_results") == 1  # never asked before JobComplete
    waited = sum(conn.sleeps)
    assert seconds <= waited <= seconds + max(0.5, seconds)


def test_bulk_csv_reads_the_same_as_rest_json(sb):
    """Bulk CSV says ...000Z, an empty cell, true/false where REST JSON says ...000+0000,
    null, true/false (api-facts §9): the records come out the same either way."""
    contact = SF["Contact"][1]["Id"]
    sb.update("Contact", contact, {"EmailBouncedDate": "2026-09-24T03:26:07.000+0000",
                                   "Department": None})  # fmt: skip
    bulk, _ = collect(make(sb, bulk="always"), ObjectType.CONTACT)
    rest, _ = collect(make(sb, bulk="never"), ObjectType.CONTACT)
    assert {i: r.raw for i, r in bulk.items()} == {i: r.raw for i, r in rest.items()}
    assert bulk[contact].raw["EmailBouncedDate"] == "2026-09-24T03:26:07.000+0000"
    assert bulk[contact].values["bounced_at"] == datetime(2026, 9, 24, 3, 26, 7, tzinfo=UTC)
    assert bulk[contact].raw["Department"] is None


def test_d2_an_incremental_away_longer_than_the_recycle_bin_asks_for_a_reconcile(timed):
    """The bin keeps deleted rows 15 days (api-facts §10): after that queryAll cannot show the
    delete, and the connector says the object needs its ids reconciled."""
    sb, clock = timed
    conn = make(sb)
    mirror, cursor = collect(conn, ObjectType.CONTACT)
    gone = sorted(mirror)[4]
    sb.delete("Contact", gone)
    clock.advance(16 * 86400)
    conn = make(sb)
    mirror, _ = collect(conn, ObjectType.CONTACT, cursor, full=False, mirror=mirror)
    assert not mirror[gone].deleted  # purged from the bin: the incremental cannot see it
    assert conn.missed_deletes(ObjectType.CONTACT)
    deletions = [r.id for p in conn.reconcile(ObjectType.CONTACT, mirror) for r in p.records]
    assert deletions == [gone]


def test_d2_a_recent_incremental_needs_no_reconcile(timed):
    sb, clock = timed
    conn = make(sb)
    _, cursor = collect(conn, ObjectType.CONTACT)
    clock.advance(14 * 86400)
    conn = make(sb)
    collect(conn, ObjectType.CONTACT, cursor, full=False)
    assert not conn.missed_deletes(ObjectType.CONTACT)


def test_d2_a_full_bin_purge_shows_in_earliest_date_available(timed):
    """A full bin purges early (after 2 hours); with check_deleted, getDeleted's
    earliestDateAvailable after the cursor says so."""
    sb, clock = timed
    conn = make(sb, check_deleted=True)
    mirror, cursor = collect(conn, ObjectType.CONTACT)
    ids = sorted(mirror)
    clock.advance(120)
    sb.recycle_bin_capacity = 1
    sb.delete("Contact", ids[1])
    clock.advance(3 * 3600)
    sb.delete("Contact", ids[2])  # two in a bin of one: ids[1] is purged at the next request
    conn = make(sb, check_deleted=True)
    mirror, _ = collect(conn, ObjectType.CONTACT, cursor, full=False, mirror=mirror)
    assert mirror[ids[2]].deleted and not mirror[ids[1]].deleted
    assert conn.missed_deletes(ObjectType.CONTACT)
    deletions = [r.id for p in conn.reconcile(ObjectType.CONTACT, mirror) for r in p.records]
    assert ids[1] in deletions


# -------------------------------------------------------- auth = "refresh_token"


def refreshing(sb, **kw) -> SalesforceConnector:
    from crmsync.sandbox.salesforce import CONSUMER_KEY, CONSUMER_SECRET, REFRESH_TOKEN

    base = dict(auth="refresh_token", consumer_key=CONSUMER_KEY,
                consumer_secret=Secret(CONSUMER_SECRET), refresh_token=Secret(REFRESH_TOKEN, "test"),
                username="", password=None, security_token=None)  # fmt: skip
    base.update(kw)
    return make(sb, **base)


def test_refresh_token_auth_pulls_through_the_token_endpoint(sb):
    conn = refreshing(sb)
    mirror, _ = collect(conn, ObjectType.ACCOUNT)
    assert set(mirror) == set(sandbox_live(sb, ObjectType.ACCOUNT))
    assert sb.requests.count(route="token") == 1 and sb.requests.count(route="login") == 0
    assert conn.calls.by_operation["auth"] == 1
    from crmsync.sandbox.salesforce import INTEGRATION_USER_ID

    assert conn.client.user_id() == INTEGRATION_USER_ID  # from the answer's identity URL
    assert sb.requests.count(route="token") == 1


def test_refresh_token_renews_an_expired_session_once_and_retries(sb):
    sb.faults.add(kind="expire_session", route="query_more", nth=1)
    conn = refreshing(sb)
    mirror, _ = collect(conn, ObjectType.CONTACT)
    assert set(live(mirror)) == set(sandbox_live(sb, ObjectType.CONTACT))
    assert sb.requests.count(route="token") == 2  # the first token, one refresh
    assert conn.calls.by_operation["query"] == 3  # 2 pages + the one refused with 401


def test_refresh_token_renewed_session_refused_again_is_auth_failed(sb):
    sb.faults.add(kind="expire_session", route="query", times=2)
    conn = refreshing(sb)
    with pytest.raises(AuthFailed) as info:
        collect(conn, ObjectType.ACCOUNT)
    assert info.value.code == "INVALID_SESSION_ID"
    assert sb.requests.count(route="token") == 2  # refreshed once, not in a loop


def test_a4_revoked_refresh_token_fails_fast_naming_the_setting(sb):
    sb.revoke_refresh_tokens()
    conn = refreshing(sb)
    with pytest.raises(AuthFailed) as info:
        conn.check()
    assert "refresh_token_env / refresh_token_file" in str(info.value)
    assert info.value.code == "invalid_grant"
    assert sb.requests.count(route="token") == 1 and conn.sleeps == []  # no retry


def test_a4_refresh_token_revoked_mid_run_fails_fast(sb):
    conn = refreshing(sb)
    collect(conn, ObjectType.OWNER)
    sb.revoke_refresh_tokens()
    sb.expire_sessions()
    with pytest.raises(AuthFailed, match="refresh_token"):
        collect(conn, ObjectType.ACCOUNT)
    assert sb.requests.count(route="token") == 2


def test_wrong_client_secret_names_the_connected_app_settings(sb):
    conn = refreshing(sb, consumer_secret=Secret("nope"))
    with pytest.raises(AuthFailed, match="consumer_key") as info:
        conn.check()
    assert info.value.code == "invalid_client"


def test_a_rotated_refresh_token_is_saved_to_its_file(sb, tmp_path):
    from crmsync.sandbox.salesforce import REFRESH_TOKEN

    token_file = tmp_path / "refresh-token"
    token_file.write_text(REFRESH_TOKEN + "\n")
    sb.auth.rotate_refresh_tokens = True
    try:
        conn = refreshing(sb, refresh_token=Secret(REFRESH_TOKEN, f"file {token_file}"))
        conn.check()
        saved = token_file.read_text().strip()
        assert saved != REFRESH_TOKEN
        # the next run authenticates with the saved token; the old one no longer works
        again = refreshing(sb, refresh_token=Secret(saved, f"file {token_file}"))
        again.check()
        with pytest.raises(AuthFailed):
            refreshing(sb).check()
    finally:
        sb.auth.rotate_refresh_tokens = False


# -------------------------------------------------------- tasks without an External ID key


def plain_key_org():
    return SalesforceSandbox(DATA, activity_external_id="plain").start()


def task_item(n: int, key: str, account: str, owner: str, kind=WriteKind.CREATE_TASK, target=None):
    payload = {"subject": f"Task {n}", "owner_id": owner, "account_id": account, "priority": "high",
               "due_date": "2026-12-01", "key": key}  # fmt: skip
    return OutboxItem(n, "salesforce", kind, key, target, payload)


def test_w4_without_an_external_id_tasks_are_created_once_and_updated_by_lookup():
    with plain_key_org() as sb:
        checks = {c.field: c for c in make(sb).ensure_fields(dry_run=False)}
        assert "not an External ID" in checks["Crmsync_Key__c"].detail
        account, owner = SF["Account"][0]["Id"], SF["User"][0]["Id"]
        batch = [task_item(n, f"k:{n}", account, owner) for n in range(3)]
        conn = make(sb)
        assert not conn.writer.upserts_tasks()
        assert [r.ok for r in conn.write(batch)] == [True] * 3
        assert sb.requests.count(route="composite_sobjects_upsert") == 0  # never upserted
        again = make(sb).write(batch)  # a retry after a lost answer: found, updated, not added
        assert all(r.ok for r in again)
        keys = [t["Crmsync_Key__c"] for t in sb.records("Task") if t.get("Crmsync_Key__c")]
        assert sorted(keys) == ["k:0", "k:1", "k:2"]
        done = make(sb).write([task_item(9, "k:1", account, owner, WriteKind.COMPLETE_TASK, again[1].crm_id)])
        assert done[0].ok and sb.record("Task", again[1].crm_id)["Status"] == "Completed"


def test_w4_without_an_external_id_a_create_whose_answer_is_lost_is_not_sent_twice():
    with plain_key_org() as sb:
        make(sb).ensure_fields(dry_run=False)
        account, owner = SF["Account"][0]["Id"], SF["User"][0]["Id"]
        # the CRM creates the tasks, then the connection drops before the answer
        sb.faults.add(kind="drop_connection", route="composite_sobjects", method="POST", apply=True, times=1)
        posts = sb.requests.count(route="composite_sobjects", method="POST")
        conn = make(sb)
        results = conn.write([task_item(n, f"lost:{n}", account, owner) for n in range(2)])
        assert all(r.ok for r in results)
        keys = [t["Crmsync_Key__c"] for t in sb.records("Task") if t.get("Crmsync_Key__c")]
        assert sorted(keys) == ["lost:0", "lost:1"]  # found by the lookup, never resent
        assert sb.requests.count(route="composite_sobjects", method="POST") - posts == 1
        assert {r.crm_id for r in results} == {t["Id"] for t in sb.records("Task") if t.get("Crmsync_Key__c")}
