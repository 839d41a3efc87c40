"""HubSpot write-back through the emulator: batches, 207 per-input errors (W2), whole-batch
rejections bisected (W3), task lookup by key (W4), 429 without Retry-After on a batch (R2)."""

from __future__ import annotations

from datetime import date

import pytest
from test_hubspot_support import FakeTime, connect, dataset, serve_dates_from

from crmsync.connectors.errors import CrmUnavailable
from crmsync.sandbox.hubspot import HubSpotSandbox
from crmsync.state.model import OutboxItem, Write, WriteKind
from tests.clock import crm_now

K = WriteKind


@pytest.fixture
def clock(monkeypatch) -> FakeTime:
    fake = FakeTime()
    serve_dates_from(monkeypatch, fake)
    return fake


@pytest.fixture
def hs(clock):
    hs = HubSpotSandbox(
        dataset=dataset(contacts=250, companies=120, deals=0), clock=clock.time, sleep=clock.sleep
    ).start()
    yield hs
    hs.stop()


@pytest.fixture
def conn(hs, clock):
    c = connect(hs, clock)
    c.ensure_fields(dry_run=False)
    hs.reset()
    return c


def item(n, kind, target=None, key=None, **payload):
    return OutboxItem(id=n, crm="hubspot", write=Write(kind, key or f"k{n}", target, payload))


def task(n, contact="121", account="1", **kw):
    payload = {
        "subject": f"Re-engage {n}",
        "body": "why",
        "due_date": date(2026, 12, 1),
        "priority": "high",
        "owner_id": "501",
        "contact_id": contact,
        "account_id": account,
    }
    payload.update(kw)
    return item(n, K.CREATE_TASK, key=f"single_threaded:hubspot:1:{n}", **payload)


def test_account_and_contact_updates_land_in_batches_of_100(conn, hs):
    items = [
        item(
            i,
            K.UPDATE_ACCOUNT,
            str(i),
            stakeholders=3,
            coverage_score=72.0,
            coverage_status="amber",
            roles_covered=["Champion", "Economic Buyer"],
        )
        for i in range(1, 121)
    ]
    items += [
        item(1000 + i, K.UPDATE_CONTACT, str(200 + i), status="stale", reason="No activity")
        for i in range(5)
    ]
    results = conn.write(items)
    assert [r.item_id for r in results] == [i.id for i in items]
    assert all(r.ok for r in results)
    assert hs.requests.count("batch_update") == 3  # 100 + 20 companies, 5 contacts
    company = hs.record("companies", "7")
    assert company["crmsync_stakeholders"] == "3" and company["crmsync_coverage_score"] == "72"
    assert company["crmsync_roles_covered"] == "Champion; Economic Buyer"
    assert hs.record("contacts", "200")["crmsync_status"] == "stale"


def test_w2_207_rejects_only_the_bad_input(conn, hs):
    hs.set_faults(
        [
            {
                "kind": "reject_write",
                "match": {"object": "contacts", "id": "130"},
                "code": "INVALID_OPTION",
                "message": "crmsync_status is locked",
            }
        ]
    )
    items = [item(i, K.UPDATE_CONTACT, str(125 + i), status="bouncing") for i in range(10)]
    results = conn.write(items)
    bad = [r for r in results if not r.ok]
    assert [(r.item_id, r.code) for r in bad] == [(5, "INVALID_OPTION")]
    assert "locked" in (bad[0].detail or "")
    assert hs.requests.count("batch_update") == 1
    assert hs.record("contacts", "131")["crmsync_status"] == "bouncing"
    assert hs.record("contacts", "130").get("crmsync_status") in (None, "")


def test_w2_unknown_record_is_rejected_not_raised(conn, hs):
    results = conn.write(
        [
            item(1, K.UPDATE_ACCOUNT, "99999", stakeholders=1),
            item(2, K.UPDATE_ACCOUNT, "2", stakeholders=1),
        ]
    )
    assert (results[0].ok, results[0].code) == (False, "OBJECT_NOT_FOUND")
    assert results[1].ok


def test_w3_whole_batch_rejection_is_bisected_so_good_rows_land(conn, hs):
    hs.set_faults(
        [
            {
                "kind": "reject_write",
                "match": {"object": "tasks", "hs_task_subject": "Re-engage 37"},
                "code": "INVALID_OWNER",
                "message": "owner is inactive",
            }
        ]
    )
    items = [task(i) for i in range(100)]
    results = conn.write(items)
    assert [(r.item_id, r.code) for r in results if not r.ok] == [(37, "INVALID_OWNER")]
    assert "owner is inactive" in (results[37].detail or "")
    assert sum(r.ok for r in results) == 99
    tasks = hs.records("tasks")
    assert len(tasks) == 99
    keys = {t["properties"]["crmsync_key"] for t in tasks}
    assert len(keys) == 99 and "single_threaded:hubspot:1:37" not in keys
    # one call for the batch, then halves down to the bad row: 1 + 2·log2(100) at most
    assert hs.requests.count("batch_create") <= 1 + 2 * 7


def test_created_task_carries_properties_and_associations(conn, hs):
    [res] = conn.write([task(1)])
    assert res.ok and res.crm_id
    [t] = hs.records("tasks")
    p = t["properties"]
    assert p["hs_task_subject"] == "Re-engage 1" and p["hs_task_priority"] == "HIGH"
    assert p["hs_task_status"] == "NOT_STARTED" and p["hs_task_type"] == "TODO"
    assert p["hubspot_owner_id"] == "501" and p["crmsync_key"] == "single_threaded:hubspot:1:1"
    assert p["hs_timestamp"].startswith("2026-12-01")
    assert {a["id"] for a in t["associations"]["contacts"]} == {"121"}
    assert {a["id"] for a in t["associations"]["companies"]} == {"1"}


def test_w4_find_tasks_by_keys_then_update_and_complete(conn, hs):
    created = conn.write([task(i) for i in range(3)])
    keys = [f"single_threaded:hubspot:1:{i}" for i in range(3)] + ["nope"]
    found = conn.find_tasks_by_keys(keys)
    assert found == {k: r.crm_id for k, r in zip(keys, created, strict=False)}
    tid = found[keys[0]]
    res = conn.write(
        [
            item(10, K.UPDATE_TASK, tid, subject="New subject"),
            item(11, K.COMPLETE_TASK, found[keys[1]], body="Resolved: champion re-engaged"),
        ]
    )
    assert all(r.ok for r in res)
    assert hs.record("tasks", tid)["hs_task_subject"] == "New subject"
    done = hs.record("tasks", found[keys[1]])
    assert done["hs_task_status"] == "COMPLETED" and "re-engaged" in done["hs_task_body"]
    assert hs.requests.count("batch_update") == 1  # update and complete share one call


def test_w4_a_task_create_whose_answer_is_lost_is_not_sent_again(conn, hs):
    # The connection drops after HubSpot applied the create. Sending it again would create a
    # second task (HubSpot tasks have no unique key); the connector stops instead, and the drain
    # keeps the row in flight to look its key up once search has caught up (W4, P6).
    hs.faults.add(kind="drop_connection", route="batch_create", apply=True, nth=1)
    with pytest.raises(CrmUnavailable):
        conn.write([task(1)])
    keys = [t["properties"].get("crmsync_key") for t in hs.records("tasks")]
    assert keys.count("single_threaded:hubspot:1:1") == 1
    assert hs.requests.count("batch_create") == 1


def test_an_update_whose_answer_is_lost_is_sent_again_and_lands(conn, hs):
    hs.faults.add(kind="drop_connection", route="batch_update", apply=True, nth=1)
    [result] = conn.write([item(1, K.UPDATE_CONTACT, "121", status="stale")])
    assert result.ok
    assert hs.requests.count("batch_update") == 2


def test_r2_429_without_retry_after_is_backed_off_and_writes_land_once(conn, hs, clock):
    hs.set_faults(
        [
            {"kind": "rate_limit", "route": "batch_update", "nth": 1},
            {"kind": "rate_limit", "route": "batch_update", "nth": 2},
        ]
    )
    results = conn.write([item(1, K.UPDATE_ACCOUNT, "3", engaged=2)])
    assert results[0].ok
    assert hs.requests.count("batch_update") == 3
    assert hs.record("companies", "3")["crmsync_engaged"] == "2"
    waits = [s for s in clock.sleeps if s > 0]
    assert len(waits) >= 2 and all(w <= 30 for w in waits)


def test_payload_that_cannot_be_mapped_is_rejected_without_a_call(conn, hs):
    results = conn.write(
        [
            item(1, K.UPDATE_ACCOUNT, "3", not_a_field=1),
            item(2, K.UPDATE_CONTACT, None, status="ok"),
        ]
    )
    assert [r.code for r in results] == ["INVALID_PAYLOAD", "INVALID_PAYLOAD"]
    assert hs.requests.counts()["total"] == 0


def test_setup_twice_changes_nothing(hs, clock):
    c = connect(hs, clock)
    dry = c.ensure_fields(dry_run=True)
    assert {x.status for x in dry} == {"missing"} and hs.requests.writes() == 0
    first = c.ensure_fields(dry_run=False)
    assert {x.status for x in first} == {"created"}
    assert {(x.object, x.field) for x in first} >= {
        ("companies", "crmsync_coverage_status"),
        ("contacts", "crmsync_status"),
        ("tasks", "crmsync_key"),
        ("companies", "crmsync_exempt"),
        ("contacts", "crmsync_exempt"),
        ("companies", "group:crmsync"),
    }
    hs.reset()
    second = c.ensure_fields(dry_run=False)
    assert {x.status for x in second} == {"exists"} and all(x.detail is None for x in second)
    assert hs.requests.writes() == 0


def test_tasks_pull_only_crmsync_tasks_with_their_associations(conn, hs, clock):

    from test_hubspot_support import pull_all

    from crmsync.state.model import ObjectType

    created = conn.write([task(1), task(2, contact=None)])
    hs.create("tasks", {"hs_task_subject": "a person's own task", "hs_timestamp": "1777638896000"})
    run = crm_now()
    tasks, cursor, _ = pull_all(conn, ObjectType.TASK, full=True, started_at=run)
    assert set(tasks) == {r.crm_id for r in created}
    t1 = tasks[created[0].crm_id]
    assert t1.values["key"] == "single_threaded:hubspot:1:1" and t1.owned == {
        "key": t1.values["key"], "signature": None  # this write carried no signature
    }
    assert (t1.values["contact_id"], t1.values["account_id"]) == ("121", "1")
    assert t1.values["status"] == "NOT_STARTED" and t1.values["is_closed"] is False
    clock.sleep(3600)
    hs.archive("tasks", created[1].crm_id)
    conn.write([item(5, K.COMPLETE_TASK, created[0].crm_id, body="done")])
    later, _, _ = pull_all(conn, ObjectType.TASK, cursor, full=False, started_at=clock.now())
    assert later[created[0].crm_id].values["is_closed"] is True
    assert later[created[1].crm_id].deleted
    assert len(later) == 2  # the person's own task is not ours, live or archived


def test_writes_before_setup_are_rejected_in_one_call_with_the_fix(hs, clock):
    c = connect(hs, clock)  # no ensure_fields: crmsync's properties do not exist yet
    hs.reset()
    results = c.write([item(i, K.UPDATE_CONTACT, str(130 + i), status="stale") for i in range(40)])
    assert {r.code for r in results} == {"PROPERTY_DOESNT_EXIST"}
    assert "crmsync setup --crm hubspot" in (results[0].detail or "")
    assert hs.requests.count("batch_update") == 1  # not bisected row by row
