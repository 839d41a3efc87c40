"""The connector contract: one set of tests both connectors pass, over their sandboxes.

As vdirsyncer's tests/storage/__init__.py holds one class of tests every storage passes,
and singer-sdk's `get_tap_test_class` one for every tap, this module holds
`ConnectorContract`; a CRM's own file (test_contract_salesforce.py, test_contract_hubspot.py)
is a short subclass whose `org` fixture supplies an `Org`: a started sandbox of that CRM,
a connector factory, and the few things a person or the CRM does to the org. A capability
one connector lacks is then a failing test here, not a warning in a log.

What every connector must do (the names below say it):
- pull: a full pull yields every live record of each object in the canonical shape and ends
  with a done page whose cursor the next, incremental pull starts from; an incremental pull
  yields what changed, deletes (tombstones) and merges (`merged_into` the survivor);
  `reconcile_ids` lists every live id of each reconciled object, never a purged one;
- write: `ensure_fields` creates crmsync's fields once; each write kind (update account,
  update contact, create task, update task, complete task) lands, reads back through the
  CRM's own client, and round-trips through the next pull as the planner compares it
  (sync/ownership.same); a task is found again by its key (and listed) once the connector's
  declared `index_lag` has passed, at once when it declares none; a refused row is a WriteResult
  (ok=False, code, detail), never an exception, and the rest of its batch lands;
- survive: an access token or session that expires mid-pull is renewed once and the pull
  completes; wrong credentials fail fast as AuthFailed; a transient rate limit (HubSpot's
  429, Salesforce's concurrent-request 403) is waited out, once; the daily limit (HubSpot's
  429 DAILY, Salesforce's TotalRequests 403) stops the pull as QuotaExhausted with no call
  after it; `quota()` reports the usage.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any

import pytest

from crmsync.connectors.base import Connector
from crmsync.connectors.errors import AuthFailed, QuotaExhausted
from crmsync.state.model import (
    CrmRecord,
    ObjectType,
    OutboxItem,
    Page,
    Write,
    WriteKind,
    WriteResult,
)
from crmsync.sync.ownership import same

OT = ObjectType
K = WriteKind
PULLED = (OT.OWNER, OT.ACCOUNT, OT.CONTACT, OT.OPPORTUNITY)
RECONCILED = (OT.ACCOUNT, OT.CONTACT, OT.OPPORTUNITY)


class Org(ABC):
    """One sandbox CRM as the contract drives it (the backend a subclass supplies)."""

    crm: str

    # -- the connector
    @abstractmethod
    def connector(self, *, renewable: bool = False, bad_credentials: bool = False) -> Any:
        """A fresh connector (one per run, as sync/ does). `renewable`: auth that can be
        renewed mid-run (OAuth refresh, a new login)."""

    @abstractmethod
    def now(self) -> datetime:
        """The CRM's clock: a run's `started_at`."""

    def later(self) -> None:
        """Time passes between two runs (an hour, on a fake clock; real time needs nothing)."""
        return None

    def wait(self, seconds: float) -> None:
        """`seconds` pass on the CRM's clock (a fake clock moves). An org on real time runs a
        connector whose look-ups do not lag (`index_lag` 0) and is never asked to wait."""
        raise AssertionError(f"{self.crm}: this org cannot let {seconds:g} s pass")

    # -- what the CRM holds (its own records, never through the connector)
    @abstractmethod
    def live_ids(self, obj: ObjectType) -> set[str]: ...

    @abstractmethod
    def contact(self, contact_id: str) -> dict[str, Any]:
        """{"email", "title", "account_id"} as the CRM holds them."""

    @abstractmethod
    def role_count(self) -> int:
        """Buying roles the CRM holds (contact roles / labels and buying-role values)."""

    @abstractmethod
    def read_owned(self, obj: ObjectType, record_id: str) -> dict[str, Any]:
        """crmsync's owned fields of an account or contact, read back through the CRM's
        official client, by canonical key."""

    @abstractmethod
    def read_task(self, task_id: str) -> dict[str, Any]:
        """{"key", "subject", "body", "closed"} of a task, through the official client."""

    @abstractmethod
    def tasks_with_key(self, key: str) -> int: ...

    # -- what a person or the CRM does
    @abstractmethod
    def edit(self, obj: ObjectType, record_id: str, text: str) -> str:
        """A person changes a text field of an account (name), contact (title) or opportunity
        (name); the canonical column it shows in."""

    @abstractmethod
    def remove_role(self) -> str:
        """A person removes a buying role (Salesforce: deletes an OpportunityContactRole;
        HubSpot: takes a value out of a contact's hs_buying_role); the role's id as pulled."""

    @abstractmethod
    def delete(self, obj: ObjectType, record_id: str) -> None: ...

    @abstractmethod
    def purge(self, obj: ObjectType, record_id: str) -> None:
        """Deleted for good: gone from every listing (recycle bin / archive emptied)."""

    @abstractmethod
    def merge(self, obj: ObjectType, keep: str, lose: str) -> str:
        """Merge `lose` into `keep`; the surviving id."""

    @abstractmethod
    def reject_writes_to(self, obj: ObjectType, record_id: str) -> None:
        """A validation rule refuses every write to that record."""

    @abstractmethod
    def expire_auth_on_next_read(self) -> None: ...

    @abstractmethod
    def expire_auth_on_next_write(self) -> None: ...

    @abstractmethod
    def auth_renewals(self) -> int:
        """Logins / token grants so far."""

    @abstractmethod
    def rate_limit_next(self, route: str) -> None:
        """The CRM's transient rate limit answers the next `route` ("read"/"write") once."""

    @abstractmethod
    def spend_daily_limit_on_next_read(self) -> None:
        """Other apps spend the day's allocation: the next read is refused by the daily limit."""

    def realistic(self) -> None:
        """Turn on the CRM's realistic behaviour where it matters to a test (sandbox/
        realistic.py): HubSpot's search index lag. Salesforce's queries read the records."""
        return None

    @abstractmethod
    def requests(self) -> int:
        """API requests the CRM has answered so far."""

    # -- ids a write payload needs
    owner_id: str
    account_id: str
    contact_id: str


# ------------------------------------------------------------------ helpers


def pull(
    connector: Any, obj: ObjectType, cursor: Any = None, *, full: bool, started_at: datetime
) -> tuple[dict[str, CrmRecord], Any, list[Page]]:
    """Records by id (later pages win, as the mirror's upsert does), the last cursor, pages."""
    records: dict[str, CrmRecord] = {}
    pages: list[Page] = []
    for page in connector.pull(obj, cursor, full=full, started_at=started_at):
        pages.append(page)
        records.update({r.id: r for r in page.records})
        cursor = page.cursor
    return records, cursor, pages


def live(records: dict[str, CrmRecord]) -> set[str]:
    return {i for i, r in records.items() if not r.deleted}


def item(n: int, kind: WriteKind, target: str | None = None, **payload: Any) -> OutboxItem:
    key = str(payload.get("key") or f"contract:{n}")
    return OutboxItem(id=n, crm="contract", write=Write(kind, key, target, payload))


def task_item(org: Org, n: int, **extra: Any) -> OutboxItem:
    payload: dict[str, Any] = {
        "key": f"contract:task:{n}",
        "subject": f"Find a new champion {n}",
        "body": "Jack Ito (Champion) has left; find and engage a new one.",
        "owner_id": org.owner_id,
        "account_id": org.account_id,
        "contact_id": org.contact_id,
        "priority": "high",
        "due_date": "2026-12-01",
        **extra,
    }
    return item(n, K.CREATE_TASK, None, **payload)


ACCOUNT_PAYLOAD = {
    "stakeholders": 3,
    "engaged": 2,
    "roles_covered": ["Champion", "Economic Buyer"],
    "coverage_score": 72,
    "coverage_status": "amber",
    "hygiene_summary": "Coverage 72 (amber): 3 stakeholders, 2 engaged; no Decision Maker.",
    "signature": "v1 coverage_status=1a2b",
}
CONTACT_PAYLOAD = {
    "status": "stale",
    "reason": "No activity since 3 March 2026.",
    "signature": "v1 status=3c4d",
}


def assert_round_trip(written: dict[str, Any], got: dict[str, Any], where: str) -> None:
    wrong = {k: (v, got.get(k)) for k, v in written.items() if not same(k, v, got.get(k))}
    assert not wrong, f"{where}: written != read back: {wrong}"


# ------------------------------------------------------------------ the contract


class ConnectorContract:
    """Every test takes `org` (an Org), which the subclass provides as a fixture."""

    @pytest.fixture
    def org(self) -> Org:  # pragma: no cover - each backend overrides it
        raise NotImplementedError

    @pytest.fixture
    def ready(self, org: Org) -> Org:
        """The org after `crmsync setup`: crmsync's fields exist."""
        org.connector().ensure_fields(dry_run=False)
        return org

    # ---------------------------------------------------------------- the Protocol

    def test_the_connector_offers_every_member_of_the_protocol(self, org: Org) -> None:
        """sync/ calls every member without probing (connectors/base.py); a CRM that lacks a
        capability answers None there, so a missing member is a bug, not a capability."""
        conn = org.connector()
        members = {n for n in vars(Connector) if not n.startswith("_")} | set(
            Connector.__annotations__
        )
        assert {"write_batch", "latest_changes", "company_contacts", "missed_deletes"} <= members
        assert sorted(n for n in members if not hasattr(conn, n)) == []
        assert conn.crm == org.crm
        assert isinstance(conn.write_batch, int) and 0 < conn.write_batch <= 200
        assert type(conn.missed_deletes(OT.CONTACT)) is bool

    # ---------------------------------------------------------------- full pull

    def test_full_pull_mirrors_every_live_record(self, org: Org) -> None:
        conn = org.connector()
        started = org.now()
        for obj in PULLED:
            records, _, _ = pull(conn, obj, full=True, started_at=started)
            assert live(records) == org.live_ids(obj), obj
        roles, _, _ = pull(conn, OT.CONTACT_ROLE, full=True, started_at=started)
        assert len(live(roles)) == org.role_count() > 0
        contacts = org.live_ids(OT.CONTACT)
        for role in roles.values():
            assert role.values["contact_id"] in contacts, role.id

    def test_full_pull_maps_contacts_to_canonical_values(self, org: Org) -> None:
        records, _, _ = pull(org.connector(), OT.CONTACT, full=True, started_at=org.now())
        assert records
        for rid, record in records.items():
            want = org.contact(rid)
            got = {k: record.values.get(k) for k in want}
            assert got == want, rid

    def test_full_pull_ends_with_a_done_page_and_a_cursor_to_resume_from(self, org: Org) -> None:
        _, cursor, pages = pull(org.connector(), OT.CONTACT, full=True, started_at=org.now())
        assert pages[-1].done and not any(p.done for p in pages[:-1])
        assert cursor, "the last page carries the cursor the incremental pull starts from"
        json.dumps([p.cursor for p in pages])  # cursors are stored as JSON

    # ---------------------------------------------------------------- incremental

    @pytest.mark.parametrize("obj", [OT.ACCOUNT, OT.CONTACT, OT.OPPORTUNITY])
    def test_incremental_pull_returns_what_changed(self, org: Org, obj: ObjectType) -> None:
        conn = org.connector()
        _, cursor, _ = pull(conn, obj, full=True, started_at=org.now())
        org.later()
        changed = sorted(org.live_ids(obj))[1]
        column = org.edit(obj, changed, "Changed in a contract test")
        records, cursor2, pages = pull(conn, obj, cursor, full=False, started_at=org.now())
        assert records[changed].values[column] == "Changed in a contract test"
        assert pages[-1].done and cursor2

    @pytest.mark.parametrize("obj", [OT.ACCOUNT, OT.CONTACT, OT.OPPORTUNITY])
    def test_a_deleted_record_arrives_as_a_deletion(self, org: Org, obj: ObjectType) -> None:
        conn = org.connector()
        _, cursor, _ = pull(conn, obj, full=True, started_at=org.now())
        org.later()
        gone = sorted(org.live_ids(obj))[-1]
        org.delete(obj, gone)
        records, _, _ = pull(conn, obj, cursor, full=False, started_at=org.now())
        assert gone in records and records[gone].deleted

    def test_a_removed_buying_role_arrives_as_a_deletion(self, org: Org) -> None:
        conn = org.connector()
        started = org.now()
        cursors = {}
        for obj in (OT.CONTACT, OT.OPPORTUNITY, OT.CONTACT_ROLE):  # a run pulls them in this order
            _, cursors[obj], _ = pull(conn, obj, full=True, started_at=started)
        org.later()
        role = org.remove_role()
        started = org.now()
        for obj in (OT.CONTACT, OT.OPPORTUNITY):
            pull(conn, obj, cursors[obj], full=False, started_at=started)
        roles, _, _ = pull(conn, OT.CONTACT_ROLE, cursors[OT.CONTACT_ROLE], full=False,
                           started_at=started)  # fmt: skip
        assert role in roles and roles[role].deleted

    @pytest.mark.parametrize("obj", [OT.ACCOUNT, OT.CONTACT])
    def test_a_merged_record_arrives_as_a_deletion_merged_into_the_survivor(
        self, org: Org, obj: ObjectType
    ) -> None:
        conn = org.connector()
        _, cursor, _ = pull(conn, obj, full=True, started_at=org.now())
        org.later()
        keep, lose = sorted(org.live_ids(obj))[:2]
        survivor = org.merge(obj, keep, lose)
        records, _, _ = pull(conn, obj, cursor, full=False, started_at=org.now())
        assert records[lose].deleted and records[lose].merged_into == survivor
        assert survivor in records and not records[survivor].deleted

    # ---------------------------------------------------------------- reconcile

    def test_reconcile_lists_every_live_id_and_not_a_purged_one(self, ready: Org) -> None:
        org = ready
        purged = max(org.live_ids(OT.CONTACT) - {org.contact_id})
        org.purge(OT.CONTACT, purged)
        conn = org.connector()
        for obj in RECONCILED:
            ids = conn.reconcile_ids(obj)
            assert ids is not None, f"{org.crm} cannot list {obj} ids: reconcile would skip it"
            listed = list(ids)
            assert set(listed) == org.live_ids(obj), obj
            assert len(listed) == len(set(listed)), f"{obj} ids listed twice"
        assert purged not in org.live_ids(OT.CONTACT)
        roles = conn.reconcile_ids(OT.CONTACT_ROLE)
        assert roles is not None and len(set(roles)) == org.role_count()
        [created] = conn.write([task_item(org, 1)])
        assert created.ok, created
        tasks = conn.reconcile_ids(OT.TASK)
        assert tasks is not None and set(tasks) == {created.crm_id}

    # ---------------------------------------------------------------- setup

    def test_setup_creates_crmsync_fields_once(self, org: Org) -> None:
        conn = org.connector()
        pull(conn, OT.ACCOUNT, full=True, started_at=org.now())
        assert conn.owned_fields_missing(), "before setup crmsync's fields are missing"
        first = conn.ensure_fields(dry_run=False)
        assert first and {c.status for c in first} == {"created"}
        again = org.connector()
        assert {c.status for c in again.ensure_fields(dry_run=False)} == {"exists"}
        assert again.owned_fields_missing() == []

    def test_writes_before_setup_are_refused_as_missing_fields(self, org: Org) -> None:
        conn = org.connector()
        contact = sorted(org.live_ids(OT.CONTACT))[0]
        [result] = conn.write([item(1, K.UPDATE_CONTACT, contact, **CONTACT_PAYLOAD)])
        assert not result.ok and conn.is_missing_field_error(result.code, result.detail)

    # ---------------------------------------------------------------- writes

    def test_update_account_lands_and_round_trips(self, ready: Org) -> None:
        org = ready
        conn = org.connector()
        [result] = conn.write([item(1, K.UPDATE_ACCOUNT, org.account_id, **ACCOUNT_PAYLOAD)])
        assert result.ok, result
        assert_round_trip(ACCOUNT_PAYLOAD, org.read_owned(OT.ACCOUNT, org.account_id), "CRM")
        records, _, _ = pull(org.connector(), OT.ACCOUNT, full=True, started_at=org.now())
        assert_round_trip(ACCOUNT_PAYLOAD, dict(records[org.account_id].owned), "pull")

    def test_update_contact_lands_and_round_trips(self, ready: Org) -> None:
        org = ready
        conn = org.connector()
        [result] = conn.write([item(1, K.UPDATE_CONTACT, org.contact_id, **CONTACT_PAYLOAD)])
        assert result.ok, result
        assert_round_trip(CONTACT_PAYLOAD, org.read_owned(OT.CONTACT, org.contact_id), "CRM")
        records, _, _ = pull(org.connector(), OT.CONTACT, full=True, started_at=org.now())
        assert_round_trip(CONTACT_PAYLOAD, dict(records[org.contact_id].owned), "pull")

    def test_create_task_lands_once_and_is_found_by_its_key(self, ready: Org) -> None:
        org = ready
        conn = org.connector()
        new = task_item(org, 1)
        [result] = conn.write([new])
        assert result.ok and result.crm_id, result
        task = org.read_task(result.crm_id)
        assert (task["key"], task["subject"], task["closed"]) == (
            new.payload["key"], new.payload["subject"], False,
        )  # fmt: skip
        assert org.tasks_with_key(new.payload["key"]) == 1
        found = conn.find_tasks_by_keys([new.payload["key"], "contract:no-such-key"])
        assert list(found) == [new.payload["key"]]
        assert _task_id(found[new.payload["key"]]) == result.crm_id
        tasks, _, _ = pull(org.connector(), OT.TASK, full=True, started_at=org.now())
        assert tasks[result.crm_id].values["key"] == new.payload["key"]

    def test_a_task_created_a_moment_ago_is_found_by_its_key_and_listed(self, ready: Org) -> None:
        # What W4/W5 recovery relies on after a crash (sync/drain.py `_recover`: the keys of
        # creates left in flight are looked up before anything is sent again; a create younger
        # than `index_lag` that is not found waits), and what a reconcile relies on before it
        # deletes on absence (rows younger than `listing_lag` are kept). The declared lag must
        # cover the CRM's (realistic: HubSpot's search index lags writes, P6); a connector
        # that declares none must find the task at once.
        org = ready
        org.realistic()
        conn = org.connector()
        lag = max(conn.index_lag, conn.listing_lag(OT.TASK))
        [created] = conn.write([task_item(org, 1)])
        assert created.ok, created
        if lag:
            org.wait(lag.total_seconds())
        found = conn.find_tasks_by_keys(["contract:task:1"])
        assert _task_id(found.get("contract:task:1")) == created.crm_id
        assert created.crm_id in set(conn.reconcile_ids(OT.TASK) or ())

    def test_records_other_than_tasks_are_listed_without_lag(self, ready: Org) -> None:
        # A reconcile deletes on absence: only what the connector lists through a lagging
        # index (crmsync's tasks, on HubSpot) may keep rows the listing does not show.
        conn = ready.connector()
        for obj in (*RECONCILED, OT.CONTACT_ROLE):
            assert not conn.listing_lag(obj), obj

    def test_update_task_changes_the_task(self, ready: Org) -> None:
        org = ready
        conn = org.connector()
        [created] = conn.write([task_item(org, 1)])
        # as sync/plan.py writes them: the task's id and its key, the changed fields
        [result] = conn.write([item(2, K.UPDATE_TASK, created.crm_id, key="contract:task:1",
                                    status="open", subject="Champion found?", body="Ask Ana.")])
        assert result.ok, result
        task = org.read_task(created.crm_id)
        assert (task["subject"], task["body"], task["closed"]) == (
            "Champion found?", "Ask Ana.", False,
        )  # fmt: skip

    def test_complete_task_closes_the_task(self, ready: Org) -> None:
        org = ready
        conn = org.connector()
        [created] = conn.write([task_item(org, 1)])
        _, cursor, _ = pull(conn, OT.TASK, full=True, started_at=org.now())
        org.later()
        [result] = conn.write([item(2, K.COMPLETE_TASK, created.crm_id, key="contract:task:1",
                                    status="completed", body="Resolved: a new champion.")])
        assert result.ok, result
        assert org.read_task(created.crm_id)["closed"] is True
        tasks, _, _ = pull(conn, OT.TASK, cursor, full=False, started_at=org.now())
        assert tasks[created.crm_id].values["is_closed"] is True

    def test_a_task_a_person_deletes_arrives_as_a_deletion(self, ready: Org) -> None:
        org = ready
        conn = org.connector()
        [created] = conn.write([task_item(org, 1)])
        _, cursor, _ = pull(conn, OT.TASK, full=True, started_at=org.now())
        org.later()
        org.delete(OT.TASK, created.crm_id)
        tasks, _, _ = pull(conn, OT.TASK, cursor, full=False, started_at=org.now())
        assert tasks[created.crm_id].deleted

    def test_a_refused_row_is_a_result_and_the_rest_of_its_batch_lands(self, ready: Org) -> None:
        org = ready
        first, refused, last = sorted(org.live_ids(OT.CONTACT))[:3]
        org.reject_writes_to(OT.CONTACT, refused)
        batch = [item(n, K.UPDATE_CONTACT, cid, **CONTACT_PAYLOAD)
                 for n, cid in enumerate((first, refused, last), 1)]  # fmt: skip
        results: list[WriteResult] = org.connector().write(batch)
        assert [r.item_id for r in results] == [1, 2, 3]
        assert [r.ok for r in results] == [True, False, True]
        assert results[1].code and results[1].detail and not results[1].retryable
        for cid in (first, last):
            assert_round_trip(CONTACT_PAYLOAD, org.read_owned(OT.CONTACT, cid), cid)

    def test_a_write_to_a_deleted_record_is_refused_not_raised(self, ready: Org) -> None:
        org = ready
        gone = sorted(org.live_ids(OT.CONTACT))[2]
        org.delete(OT.CONTACT, gone)
        [result] = org.connector().write([item(1, K.UPDATE_CONTACT, gone, **CONTACT_PAYLOAD)])
        assert not result.ok and result.code and not result.retryable

    # ---------------------------------------------------------------- auth

    def test_auth_expiring_mid_pull_is_renewed_once_and_the_pull_completes(
        self, org: Org
    ) -> None:
        conn = org.connector(renewable=True)
        started = org.now()
        pull(conn, OT.OWNER, full=True, started_at=started)  # logged in, reading
        before = org.auth_renewals()
        org.expire_auth_on_next_read()
        records, _, pages = pull(conn, OT.CONTACT, full=True, started_at=started)
        assert live(records) == org.live_ids(OT.CONTACT) and pages[-1].done
        assert org.auth_renewals() == before + 1

    def test_auth_expiring_before_a_write_is_renewed_and_the_write_lands_once(
        self, ready: Org
    ) -> None:
        org = ready
        conn = org.connector(renewable=True)
        conn.check()
        before = org.auth_renewals()
        org.expire_auth_on_next_write()
        [result] = conn.write([task_item(org, 1)])
        assert result.ok, result
        assert org.tasks_with_key("contract:task:1") == 1
        assert org.auth_renewals() == before + 1

    def test_wrong_credentials_fail_fast_as_auth_failed(self, org: Org) -> None:
        before = org.requests()
        with pytest.raises(AuthFailed):
            org.connector(bad_credentials=True).check()
        assert org.requests() - before <= 1  # no retry loop

    # ---------------------------------------------------------------- rate limits

    def test_a_transient_rate_limit_on_a_pull_is_waited_out(self, org: Org) -> None:
        conn = org.connector()
        started = org.now()
        pull(conn, OT.OWNER, full=True, started_at=started)
        before = org.requests()
        expected, _, _ = pull(org.connector(), OT.CONTACT, full=True, started_at=started)
        cost = org.requests() - before
        org.rate_limit_next("read")
        before = org.requests()
        records, _, _ = pull(conn, OT.CONTACT, full=True, started_at=started)
        assert live(records) == live(expected)
        assert org.requests() - before <= cost + 1  # the refused request, sent once more

    def test_a_transient_rate_limit_on_a_write_is_waited_out_and_it_lands_once(
        self, ready: Org
    ) -> None:
        org = ready
        conn = org.connector()
        org.rate_limit_next("write")
        [result] = conn.write([task_item(org, 1)])
        assert result.ok, result
        assert org.tasks_with_key("contract:task:1") == 1

    def test_the_daily_limit_stops_a_pull_with_quota_exhausted_and_no_call_after_it(
        self, org: Org
    ) -> None:
        conn = org.connector()
        started = org.now()
        pull(conn, OT.OWNER, full=True, started_at=started)
        org.spend_daily_limit_on_next_read()
        before = org.requests()
        with pytest.raises(QuotaExhausted):
            pull(conn, OT.CONTACT, full=True, started_at=started)
        refused = org.requests()
        assert refused - before >= 1
        with pytest.raises(QuotaExhausted):
            pull(conn, OT.ACCOUNT, full=True, started_at=started)
        assert org.requests() == refused  # not one call after the refusal

    def test_quota_reports_the_usage(self, org: Org) -> None:
        # Known from the first data answer at the latest: Salesforce makes no `limits` call
        # (every REST answer says the usage, issue 14); HubSpot reads it before its first call.
        conn = org.connector()
        conn.check()
        pull(conn, OT.OWNER, full=True, started_at=org.now())
        quota = conn.quota()
        assert quota.limit and quota.used is not None and 0 < quota.used <= quota.limit


def _task_id(found: Any) -> str:
    """find_tasks_by_keys answers CrmRecords (Salesforce) or ids (HubSpot); sync/drain.py
    reads both."""
    return str(getattr(found, "id", found))

