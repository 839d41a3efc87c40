"""Salesforce connector at the request level (`responses`): what it sends, how it maps answers.

These tests pin the wire shape (SOQL text, endpoints, headers, batch size,
collections bodies) and the translation of every failure into connectors.errors.
The same behaviours are exercised end to end against the sandbox in
test_salesforce_e2e.py.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from crmsync.connectors.base import Secret
from crmsync.connectors.errors import (
    AuthFailed,
    ConfigError,
    CrmRefused,
    CrmUnavailable,
    QuotaExhausted,
    RateLimited,
)
from crmsync.connectors.retry import RetryPolicy
from crmsync.connectors.salesforce import SalesforceConnector, Settings
from crmsync.connectors.salesforce.client import login_domain, operation_of
from crmsync.connectors.salesforce.pull import bulk_cost
from crmsync.state.model import ObjectType, OutboxItem, Write, WriteKind
from crmsync.state.schema_cache import Cached, MemorySchemaStore

INSTANCE = "https://na1.example.com"
BASE = f"{INSTANCE}/services/data/v59.0/"
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SLEEPS: list[float] = []


def settings(**kw) -> Settings:
    base = dict(
        auth="session",
        session_id=Secret("00D000000000001!tok", "test"),
        instance_url=INSTANCE,
        extra_fields={"Contact": ["Department"]},
    )
    base.update(kw)
    return Settings(**base)


def connector(**kw) -> SalesforceConnector:
    SLEEPS.clear()
    policy = RetryPolicy(max_attempts=4, max_elapsed_seconds=60)
    return SalesforceConnector(settings(**kw), sleep=SLEEPS.append, retry=policy)


def sfid(prefix: str, n: int) -> str:
    return f"{prefix}5g{n:010d}AAA"


def describe(name: str, *fields, picklists=None) -> dict:
    """A describe body: fields given as "Name", "Name:type" or "Name:type:external"."""
    out = []
    for spec in fields:
        fname, _, ftype = spec.partition(":")
        ftype, _, flag = ftype.partition(":")
        entry = {"name": fname, "type": ftype or "string", "externalId": flag == "external"}
        if picklists and fname in picklists:
            entry["picklistValues"] = [{"value": v, "active": True} for v in picklists[fname]]
        out.append(entry)
    return {"name": name, "fields": out}


CONTACT_FIELDS = (
    "Id:id",
    "SystemModstamp:datetime",
    "IsDeleted:boolean",
    "MasterRecordId:reference",
    "AccountId:reference",
    "FirstName",
    "LastName",
    "Email:email",
    "Title",
    "OwnerId:reference",
    "LastActivityDate:date",
    "CreatedDate:datetime",
    "IsEmailBounced:boolean",
    "EmailBouncedReason",
    "EmailBouncedDate:datetime",
    "HasOptedOutOfEmail:boolean",
    "Crmsync_Status__c",
    "Crmsync_Reason__c:textarea",
    "Crmsync_Signature__c",
    "Crmsync_Exempt__c",
    "Department",
)
ACCOUNT_FIELDS = (
    "Id:id",
    "SystemModstamp:datetime",
    "IsDeleted:boolean",
    "MasterRecordId:reference",
    "Name",
    "Website:url",
    "OwnerId:reference",
    "Tier__c:picklist",
    "Crmsync_Exempt__c",
    "Crmsync_Stakeholders__c:double",
    "Crmsync_Engaged__c:double",
    "Crmsync_Roles_Covered__c",
    "Crmsync_Coverage_Score__c:double",
    "Crmsync_Coverage_Status__c",
    "Crmsync_Hygiene_Summary__c:textarea",
    "Crmsync_Signature__c",
)
TASK_FIELDS = (
    "Id:id",
    "SystemModstamp:datetime",
    "IsDeleted:boolean",
    "Crmsync_Key__c:string:external",
    "Crmsync_Signature__c",
    "WhatId:reference",
    "WhoId:reference",
    "OwnerId:reference",
    "Subject",
    "Description:textarea",
    "Status:picklist",
    "Priority:picklist",
    "ActivityDate:date",
    "IsClosed:boolean",
)


def contact(n: int, **kw) -> dict:
    rec = {
        "attributes": {
            "type": "Contact",
            "url": f"/services/data/v59.0/sobjects/Contact/{sfid('003', n)}",
        },
        "Id": sfid("003", n),
        "SystemModstamp": (T0 + timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
        "IsDeleted": False,
        "MasterRecordId": None,
        "AccountId": sfid("001", 1),
        "FirstName": "Ada",
        "LastName": f"Person{n}",
        "Email": f"p{n}@acme.test",
        "Title": "CTO",
        "OwnerId": sfid("005", 1),
        "LastActivityDate": "2026-04-02",
        "CreatedDate": "2025-01-01T00:00:00.000+0000",
        "IsEmailBounced": False,
        "EmailBouncedReason": None,
        "EmailBouncedDate": None,
        "HasOptedOutOfEmail": False,
        "Crmsync_Status__c": "ok",
        "Crmsync_Reason__c": None,
        "Crmsync_Exempt__c": None,
        "Department": "R&D",
    }
    rec.update(kw)
    return rec


def add_describe(name: str, fields, **kw) -> None:
    responses.add(
        responses.GET, f"{BASE}sobjects/{name}/describe", json=describe(name, *fields, **kw)
    )


def soql_of(call) -> str:
    return parse_qs(urlsplit(call.request.url).query)["q"][0]


def query_calls() -> list:
    return [c for c in responses.calls if "/query" in c.request.url or "/queryAll" in c.request.url]


# ------------------------------------------------------------------ settings and auth


@pytest.mark.parametrize(
    "url, auth, domain",
    [
        ("https://login.salesforce.com", "password", "login"),
        ("https://test.salesforce.com", "jwt", "test"),
        ("https://acme.my.salesforce.com", "password", "acme.my"),
        ("https://acme.my.salesforce.com", "client_credentials", "acme.my"),
        ("https://127.0.0.1:8443", "password", "login"),
        ("https://127.0.0.1:8443", "client_credentials", "crmsync-login"),
    ],
)
def test_login_url_maps_to_simple_salesforce_domain(url, auth, domain):
    assert login_domain(url, auth)[0] == domain


@pytest.mark.parametrize(
    "key, value",
    [("auth", "oauth"), ("bulk", "sometimes"), ("max_daily_share", 0), ("api_version", "v59.0")],
)
def test_bad_settings_name_the_key(key, value):
    with pytest.raises(ValueError, match=key):
        Settings(**{key: value})


@responses.activate
def test_password_login_sends_soap_with_token_and_routes_to_login_url():
    soap = (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com">'
        "<soapenv:Body><loginResponse><result><serverUrl>https://na1.example.com/services/Soap/u/59.0/00D</serverUrl>"
        "<sessionId>00D!fresh</sessionId></result></loginResponse></soapenv:Body></soapenv:Envelope>"
    )
    responses.add(
        responses.POST, "https://sandbox.example.com:9443/services/Soap/u/59.0", body=soap
    )
    responses.add(
        responses.GET, f"{BASE}limits/", json={"DailyApiRequests": {"Max": 1000, "Remaining": 990}},
        headers={"Sforce-Limit-Info": "api-usage=10/1000"},
    )  # fmt: skip
    conn = connector(
        auth="password",
        login_url="https://sandbox.example.com:9443",
        username="u@x.test",
        password=Secret("pw"),
        security_token=Secret("tok"),
        session_id=None,
        instance_url="",
    )
    conn.check()
    assert len(responses.calls) == 1, "check() logs in and asks nothing else (issue 14)"
    login = responses.calls[0].request
    assert (
        b"<n1:password>pwtok</n1:password>" in login.body.encode()
        if isinstance(login.body, str)
        else login.body
    )
    conn.client.restful("limits/", operation="limits")  # the next call uses the session
    assert responses.calls[1].request.headers["Authorization"] == "Bearer 00D!fresh"
    assert conn.calls.by_operation == {"auth": 1, "limits": 1}
    assert conn.calls.total == 1
    assert conn.quota().limit == 1000 and conn.quota().used == 10


@responses.activate
def test_login_fault_is_auth_failed_and_not_retried():
    fault = (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>'
        "<detail><sf:LoginFault><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>"
        "<sf:exceptionMessage>Invalid username, password, security token</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    responses.add(
        responses.POST, "https://login.salesforce.com/services/Soap/u/59.0", body=fault, status=500
    )
    conn = connector(auth="password", username="u", password=Secret("bad"), session_id=None)
    with pytest.raises(AuthFailed, match="INVALID_LOGIN") as info:
        conn.check()
    assert "bad" not in str(info.value)
    assert len(responses.calls) == 1


@responses.activate
def test_login_endpoint_503_is_unavailable_and_retried():
    responses.add(
        responses.POST,
        "https://login.salesforce.com/services/oauth2/token",
        body="down",
        status=503,
    )
    responses.add(
        responses.POST,
        "https://login.salesforce.com/services/oauth2/token",
        json={"access_token": "00D!t", "instance_url": INSTANCE},
    )
    responses.add(responses.GET, f"{BASE}limits/", json={})
    conn = connector(
        auth="oauth_password",
        username="u",
        password=Secret("pw"),
        consumer_key="ck",
        consumer_secret=Secret("cs"),
        session_id=None,
    )
    conn.check()
    assert conn.calls.by_operation["auth"] == 2 and len(SLEEPS) == 1


def test_missing_secret_names_the_setting():
    # A setting missing from sync.toml is a local problem (exit 2), not the CRM's.
    conn = connector(auth="jwt", username="u", consumer_key="", session_id=None)
    with pytest.raises(ConfigError, match="consumer_key"):
        conn.check()


# ------------------------------------------------------------------ kept describes (issue 14)

KEPT_AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DESCRIBED_AT = "Tue, 01 Dec 2026 09:00:00 GMT"


@responses.activate
def test_a_kept_describe_is_not_asked_for_within_the_max_age_and_revalidated_after_it():
    responses.add(
        responses.GET, f"{BASE}sobjects/Contact/describe",
        json=describe("Contact", *CONTACT_FIELDS), headers={"Date": DESCRIBED_AT},
    )  # fmt: skip
    responses.add(responses.GET, f"{BASE}sobjects/Contact/describe", status=304)
    store = MemorySchemaStore(KEPT_AT)
    first = connector()
    first.use_schema_store(store)
    body = first.client.describe("Contact")
    assert store.get("describe:Contact") == Cached(body, KEPT_AT, DESCRIBED_AT)

    store.now = KEPT_AT + timedelta(hours=23)  # the next runs, within schema_max_age_hours (24)
    within = connector()
    within.use_schema_store(store)
    assert within.client.describe("Contact") == body
    assert len(responses.calls) == 1 and within.calls.total == 0

    store.now = KEPT_AT + timedelta(hours=25)
    after = connector()
    after.use_schema_store(store)
    assert after.client.describe("Contact") == body  # 304 Not Modified: no body, keep ours
    revalidation = responses.calls[1].request
    assert revalidation.headers["If-Modified-Since"] == DESCRIBED_AT
    assert after.calls.by_operation == {"describe": 1}
    assert store.get("describe:Contact") == Cached(body, KEPT_AT + timedelta(hours=25), DESCRIBED_AT)


# ------------------------------------------------------------------ full pull


@responses.activate
def test_full_pull_request_shape_pages_and_cursors():
    add_describe("Contact", CONTACT_FIELDS)
    responses.add(
        responses.GET,
        f"{BASE}query/",
        json={
            "totalSize": 3,
            "done": False,
            "nextRecordsUrl": "/services/data/v59.0/query/01gA-2000",
            "records": [contact(1), contact(2)],
        },
        headers={"Date": "Fri, 01 May 2026 13:00:00 GMT", "Sforce-Limit-Info": "api-usage=10/1000"},
    )
    responses.add(
        responses.GET,
        f"{BASE}query/01gA-2000",
        json={"totalSize": 3, "done": True, "records": [contact(3)]},
    )
    conn = connector()
    pages = list(conn.pull(ObjectType.CONTACT, None, full=True, started_at=T0 + timedelta(days=1)))

    soql = soql_of(responses.calls[1])
    assert soql == (
        "SELECT Id, SystemModstamp, IsDeleted, MasterRecordId, AccountId, FirstName, LastName, "
        "Email, Title, OwnerId, LastActivityDate, CreatedDate, IsEmailBounced, EmailBouncedReason, "
        "EmailBouncedDate, HasOptedOutOfEmail, Crmsync_Exempt__c, Crmsync_Status__c, "
        "Crmsync_Reason__c, Crmsync_Signature__c, Department FROM Contact ORDER BY Id"
    )
    assert "/query/?" in responses.calls[1].request.url  # live rows only on a full pull
    for call in responses.calls[1:]:
        assert call.request.headers["Sforce-Query-Options"] == "batchSize=2000"
    assert [len(p.records) for p in pages] == [2, 1, 0]
    assert pages[0].cursor["mode"] == "full" and pages[0].cursor["after_id"] == sfid("003", 2)
    assert pages[1].cursor["after_id"] == sfid("003", 3)
    # the hand-over cursor is the newest SystemModstamp seen, capped by the server's Date - skew,
    # and says when the pull began by the server's clock (the recycle-bin check, D2)
    assert pages[-1].done and pages[-1].cursor == {
        "mode": "incremental",
        "watermark": (T0 + timedelta(minutes=3)).isoformat(),
        "pulled_at": (T0 + timedelta(minutes=59)).isoformat(),
    }
    rec = pages[0].records[0]
    assert rec.values["last_activity_at"] == datetime(2026, 4, 2, tzinfo=UTC)
    assert (
        rec.values["email"] == "p1@acme.test" and rec.values["left_company"] is None
    )  # not configured
    assert rec.owned == {"status": "ok", "reason": None, "signature": None}
    assert "attributes" not in rec.raw and rec.raw["Department"] == "R&D"
    assert conn.calls.by_operation == {"describe": 1, "query": 2}
    assert conn.stats[ObjectType.CONTACT].total_size == 3


@responses.activate
def test_full_pull_watermark_is_capped_by_the_server_clock():
    add_describe("Contact", CONTACT_FIELDS)
    responses.add(
        responses.GET,
        f"{BASE}query/",
        json={"totalSize": 1, "done": True, "records": [contact(30)]},  # modified at 12:30
        headers={"Date": "Fri, 01 May 2026 12:10:00 GMT"},  # server says 12:10 (local clock is off)
    )
    conn = connector()
    pages = list(conn.pull(ObjectType.CONTACT, None, full=True, started_at=T0 + timedelta(hours=5)))
    assert pages[-1].cursor["watermark"] == datetime(2026, 5, 1, 12, 9, tzinfo=UTC).isoformat()


@responses.activate
def test_full_pull_resumes_after_the_last_committed_id():
    add_describe("Contact", CONTACT_FIELDS)
    responses.add(
        responses.GET, f"{BASE}query/", json={"totalSize": 1, "done": True, "records": [contact(9)]}
    )
    cursor = {
        "mode": "full",
        "after_id": sfid("003", 8),
        "watermark": T0.isoformat(),
        "max_seen": None,
    }
    later = T0 + timedelta(hours=1)
    pages = list(connector().pull(ObjectType.CONTACT, cursor, full=False, started_at=later))
    assert soql_of(responses.calls[1]).endswith(
        f"FROM Contact WHERE Id > '{sfid('003', 8)}' ORDER BY Id"
    )
    # the first attempt's cap still bounds the hand-over
    assert pages[-1].cursor["watermark"] == T0.isoformat()


def test_resume_cursor_with_a_forged_id_is_refused():
    conn = connector()
    conn.client._describes["Contact"] = describe("Contact", *CONTACT_FIELDS)
    bad = {"mode": "full", "after_id": "x' OR Name != '", "watermark": None}
    with pytest.raises(ValueError, match="not a Salesforce Id"):
        list(conn.pull(ObjectType.CONTACT, bad, full=True, started_at=T0))


@responses.activate
def test_x5_missing_fields_are_left_out_with_one_warning(caplog):
    fields = [f for f in CONTACT_FIELDS if not f.startswith(("Title", "Department"))]
    add_describe("Contact", fields)
    rec = contact(1)
    del rec["Title"], rec["Department"]
    responses.add(
        responses.GET, f"{BASE}query/", json={"totalSize": 1, "done": True, "records": [rec]}
    )
    conn = connector()
    with caplog.at_level(logging.WARNING):
        pages = list(conn.pull(ObjectType.CONTACT, None, full=True, started_at=T0))
        list(
            conn.pull(ObjectType.CONTACT, None, full=True, started_at=T0)
        )  # same run: no new describe
    soql = soql_of(responses.calls[1])
    assert "Title" not in soql and "Department" not in soql
    assert pages[0].records[0].values["title"] is None
    missing = [r for r in caplog.records if r.getMessage().startswith("salesforce fields missing")]
    assert len(missing) == 1 and missing[0].fields == ["Title", "Department"]
    assert conn.calls.by_operation["describe"] == 1


@responses.activate
def test_x8_bad_values_are_stored_or_skipped_with_a_warning(caplog):
    add_describe("Account", ACCOUNT_FIELDS, picklists={"Tier__c": ["Strategic", "Growth"]})
    good = {
        "Id": sfid("001", 1),
        "SystemModstamp": "2026-05-01T12:00:00.000+0000",
        "Name": "Acme",
        "Website": "https://www.Acme.com/about",
        "Tier__c": "Platinum",
        "IsDeleted": False,
    }
    odd = {
        "Id": sfid("001", 2),
        "SystemModstamp": "not a date",
        "Name": "Bad\x00 \ud800 Co",
        "Website": "acme co uk",
        "Tier__c": "Growth",
        "IsDeleted": False,
    }
    no_id = {"Id": None, "SystemModstamp": "2026-05-01T12:00:00.000+0000", "Name": "Ghost"}
    responses.add(
        responses.GET,
        f"{BASE}query/",
        json={"totalSize": 3, "done": True, "records": [good, odd, no_id]},
    )
    conn = connector()
    with caplog.at_level(logging.WARNING):
        pages = list(conn.pull(ObjectType.ACCOUNT, None, full=True, started_at=T0))
    a, b = pages[0].records
    assert a.values["tier"] == "Platinum" and a.values["domain"] == "acme.com"
    assert b.modified_at is None and b.values["domain"] is None
    assert b.values["name"] == "Bad \ufffd Co"
    json.dumps(b.raw, ensure_ascii=False).encode("utf-8")  # storable
    stats = conn.stats[ObjectType.ACCOUNT]
    assert stats.malformed == 1 and stats.records == 2
    assert stats.problems["Tier__c: unknown picklist value"] == 1
    assert stats.problems["SystemModstamp: malformed datetime"] == 1
    text = caplog.text
    assert "acme co uk" not in text and "Bad" not in text  # ids only, never values


# ------------------------------------------------------------------ incremental


@responses.activate
def test_incremental_uses_query_all_with_lookback_and_maps_deletes_and_merges():
    add_describe("Contact", CONTACT_FIELDS)
    loser = contact(5, IsDeleted=True, MasterRecordId=sfid("003", 1))
    responses.add(
        responses.GET,
        f"{BASE}queryAll/",
        json={"totalSize": 2, "done": True, "records": [contact(4), loser]},
        headers={"Date": "Fri, 01 May 2026 14:00:00 GMT"},
    )
    cursor = {"mode": "incremental", "watermark": (T0 + timedelta(minutes=3)).isoformat()}
    pages = list(connector().pull(ObjectType.CONTACT, cursor, full=False, started_at=T0))
    soql = soql_of(responses.calls[1])
    assert "/queryAll/?" in responses.calls[1].request.url
    assert soql.endswith(
        "FROM Contact WHERE SystemModstamp >= 2026-05-01T11:58:00Z ORDER BY SystemModstamp, Id"
    )
    deleted = pages[0].records[1]
    assert deleted.deleted and deleted.merged_into == sfid("003", 1)
    assert not pages[0].records[0].deleted and pages[0].records[0].merged_into is None
    assert (
        pages[-1].done and pages[-1].cursor["watermark"] == (T0 + timedelta(minutes=5)).isoformat()
    )


@responses.activate
def test_incremental_with_nothing_new_keeps_the_cursor():
    add_describe("Contact", CONTACT_FIELDS)
    responses.add(
        responses.GET, f"{BASE}queryAll/", json={"totalSize": 0, "done": True, "records": []}
    )
    cursor = {"mode": "incremental", "watermark": T0.isoformat()}
    pages = list(connector().pull(ObjectType.CONTACT, cursor, full=False, started_at=T0))
    # the watermark stays; `pulled_at` says when this pull began (started_at - skew: no Date)
    after = {**cursor, "pulled_at": (T0 - timedelta(minutes=1)).isoformat()}
    assert [p.cursor for p in pages] == [after, after]


@responses.activate
def test_p8_query_timeout_splits_the_window_and_continues():
    add_describe("Contact", CONTACT_FIELDS)
    timeout = [
        {"errorCode": "QUERY_TIMEOUT", "message": "Your query request was running for too long."}
    ]
    responses.add(
        responses.GET,
        f"{BASE}queryAll/",
        json=timeout,
        status=400,
        headers={"Date": "Fri, 01 May 2026 14:00:00 GMT"},
    )
    responses.add(
        responses.GET,
        f"{BASE}queryAll/",
        json={"totalSize": 1, "done": True, "records": [contact(10)]},
    )
    responses.add(
        responses.GET,
        f"{BASE}queryAll/",
        json={"totalSize": 1, "done": True, "records": [contact(90)]},
    )
    cursor = {"mode": "incremental", "watermark": T0.isoformat()}
    conn = connector()
    pages = list(conn.pull(ObjectType.CONTACT, cursor, full=False, started_at=T0))
    soqls = [soql_of(c) for c in query_calls()]
    assert "SystemModstamp >= 2026-05-01T11:55:00Z ORDER BY" in soqls[0]
    assert (
        "SystemModstamp >= 2026-05-01T11:55:00Z AND SystemModstamp < 2026-05-01T12:57:30Z"
        in soqls[1]
    )
    assert "SystemModstamp >= 2026-05-01T12:57:30Z ORDER BY" in soqls[2]
    assert [r.id for p in pages for r in p.records] == [sfid("003", 10), sfid("003", 90)]
    assert conn.stats[ObjectType.CONTACT].windows_split == 1


@responses.activate
def test_task_pull_only_reads_tasks_carrying_the_key():
    add_describe("Task", TASK_FIELDS)
    responses.add(
        responses.GET, f"{BASE}query/", json={"totalSize": 0, "done": True, "records": []}
    )
    list(connector().pull(ObjectType.TASK, None, full=True, started_at=T0))
    assert "FROM Task WHERE Crmsync_Key__c != null ORDER BY Id" in soql_of(responses.calls[1])


@responses.activate
def test_task_pull_without_the_key_field_makes_no_query():
    add_describe("Task", [f for f in TASK_FIELDS if not f.startswith("Crmsync")])
    pages = list(connector().pull(ObjectType.TASK, None, full=True, started_at=T0))
    assert len(responses.calls) == 1 and pages[0].done and not pages[0].records


# ------------------------------------------------------------------ errors


def _pull_contacts(conn):
    return list(conn.pull(ObjectType.CONTACT, None, full=True, started_at=T0))


@responses.activate
@pytest.mark.parametrize(
    "status, body, error, calls",
    [
        (
            401,
            [{"errorCode": "INVALID_SESSION_ID", "message": "Session expired or invalid"}],
            AuthFailed,
            1,
        ),
        (
            403,
            [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}],
            QuotaExhausted,
            1,
        ),
        (
            403,
            [
                {
                    "errorCode": "REQUEST_LIMIT_EXCEEDED",
                    "message": "ConcurrentRequests (Concurrent API Requests) Limit exceeded.",
                }
            ],
            RateLimited,
            4,
        ),
        (403, [{"errorCode": "INSUFFICIENT_ACCESS", "message": "no"}], CrmRefused, 1),
        (400, [{"errorCode": "MALFORMED_QUERY", "message": "unexpected token"}], CrmRefused, 1),
        (404, [{"errorCode": "NOT_FOUND", "message": "gone"}], CrmRefused, 1),
        (500, [{"errorCode": "UNKNOWN_EXCEPTION", "message": "boom"}], CrmUnavailable, 4),
        (503, "<html>Service Unavailable</html>", CrmUnavailable, 4),
    ],
)
def test_http_errors_map_to_the_error_tree(status, body, error, calls):
    add_describe("Contact", CONTACT_FIELDS)
    kw = {"json": body} if not isinstance(body, str) else {"body": body}
    responses.add(responses.GET, f"{BASE}query/", status=status, **kw)
    conn = connector()
    with pytest.raises(error) as info:
        _pull_contacts(conn)
    assert type(info.value) is error
    assert info.value.crm == "salesforce" and info.value.status == status
    if not isinstance(body, str):
        assert info.value.code == body[0]["errorCode"]
    assert conn.calls.by_operation["query"] == calls


@responses.activate
@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ConnectionError("reset by peer"),
        requests.exceptions.ReadTimeout("slow"),
        requests.exceptions.ChunkedEncodingError("cut"),
    ],
)
def test_r7_transport_failures_are_retried_then_succeed(failure):
    add_describe("Contact", CONTACT_FIELDS)
    responses.add(responses.GET, f"{BASE}query/", body=failure)
    responses.add(
        responses.GET, f"{BASE}query/", body='{"totalSize": 1, "done": true, "records": ['
    )  # truncated
    responses.add(
        responses.GET, f"{BASE}query/", json={"totalSize": 1, "done": True, "records": [contact(1)]}
    )
    conn = connector()
    pages = _pull_contacts(conn)
    assert len(pages[0].records) == 1 and len(SLEEPS) == 2


@responses.activate
def test_r8_permanent_503_is_bounded_and_named():
    add_describe("Contact", CONTACT_FIELDS)
    responses.add(responses.GET, f"{BASE}query/", status=503, body="down")
    conn = connector()
    with pytest.raises(CrmUnavailable, match="HTTP 503"):
        _pull_contacts(conn)
    assert conn.calls.by_operation["query"] == 4 and sum(SLEEPS) <= 60


@responses.activate
def test_503_retry_after_header_is_honoured():
    add_describe("Contact", CONTACT_FIELDS)
    responses.add(
        responses.GET, f"{BASE}query/", status=503, body="busy", headers={"Retry-After": "7"}
    )
    responses.add(
        responses.GET, f"{BASE}query/", json={"totalSize": 0, "done": True, "records": []}
    )
    _pull_contacts(connector())
    assert SLEEPS == [7.0]


@responses.activate
def test_r5_request_limit_exceeded_stops_every_later_call():
    add_describe("Contact", CONTACT_FIELDS)
    add_describe("Account", ACCOUNT_FIELDS)
    body = [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}]
    responses.add(responses.GET, f"{BASE}query/", status=403, json=body)
    conn = connector()
    with pytest.raises(QuotaExhausted) as info:
        _pull_contacts(conn)
    assert info.value.retry_at is not None
    before = len(responses.calls)
    with pytest.raises(QuotaExhausted):
        list(conn.pull(ObjectType.CONTACT, None, full=True, started_at=T0))
    with pytest.raises(QuotaExhausted):
        conn.write(
            [
                OutboxItem(
                    1, "salesforce",
                    Write(WriteKind.UPDATE_CONTACT, "k", sfid("003", 1), {"status": "ok"}),
                )  # fmt: skip
            ]
        )
    assert len(responses.calls) == before  # not one request after the 403


@responses.activate
def test_r6_limit_info_past_the_share_stops_before_the_next_call():
    add_describe("Contact", CONTACT_FIELDS)
    responses.add(
        responses.GET,
        f"{BASE}query/",
        json={
            "totalSize": 4000,
            "done": False,
            "nextRecordsUrl": "/services/data/v59.0/query/01gA-2000",
            "records": [contact(1)],
        },
        headers={"Sforce-Limit-Info": "api-usage=500/1000"},
    )
    conn = connector(bulk="never")
    got = []
    with pytest.raises(QuotaExhausted, match="500/1,000"):
        for page in conn.pull(ObjectType.CONTACT, None, full=True, started_at=T0):
            got.append(page)
    assert len(got) == 1 and got[0].cursor["after_id"] == sfid(
        "003", 1
    )  # committed page, cursor kept
    assert len(query_calls()) == 1
    assert conn.quota().used == 500 and conn.quota().limit == 1000


@responses.activate
def test_a2_expired_session_between_pages_is_renewed_and_the_page_retried():
    soap = (
        '<?xml version="1.0"?><Envelope xmlns="urn:partner.soap.sforce.com"><Body><loginResponse><result>'
        f"<serverUrl>{INSTANCE}/services/Soap/u/59.0/00D</serverUrl><sessionId>00D!s{{}}</sessionId>"
        "</result></loginResponse></Body></Envelope>"
    )
    responses.add(
        responses.POST, "https://login.salesforce.com/services/Soap/u/59.0", body=soap.format(1)
    )
    responses.add(
        responses.POST, "https://login.salesforce.com/services/Soap/u/59.0", body=soap.format(2)
    )
    add_describe("Contact", CONTACT_FIELDS)
    responses.add(
        responses.GET,
        f"{BASE}query/",
        json={
            "totalSize": 2,
            "done": False,
            "nextRecordsUrl": "/services/data/v59.0/query/01gA-1",
            "records": [contact(1)],
        },
    )
    expired = [{"errorCode": "INVALID_SESSION_ID", "message": "Session expired or invalid"}]
    responses.add(responses.GET, f"{BASE}query/01gA-1", status=401, json=expired)
    responses.add(
        responses.GET,
        f"{BASE}query/01gA-1",
        json={"totalSize": 2, "done": True, "records": [contact(2)]},
    )
    conn = connector(
        auth="password", username="u", password=Secret("p"), session_id=None, instance_url=""
    )
    pages = _pull_contacts(conn)
    assert [r.id for p in pages for r in p.records] == [sfid("003", 1), sfid("003", 2)]
    assert responses.calls[-1].request.headers["Authorization"] == "Bearer 00D!s2"
    assert conn.calls.by_operation == {"auth": 2, "describe": 1, "query": 3}


# ------------------------------------------------------------------ bulk


BULK_CSV = (
    '"Id","SystemModstamp","IsDeleted","MasterRecordId","AccountId","FirstName","LastName","Email",'
    '"Title","OwnerId","LastActivityDate","CreatedDate","IsEmailBounced","EmailBouncedReason",'
    '"EmailBouncedDate","HasOptedOutOfEmail","Crmsync_Exempt__c","Crmsync_Status__c",'
    '"Crmsync_Reason__c","Department"\n'
)


def bulk_row(n: int, reason: str = "") -> str:
    return (
        f'"{sfid("003", n)}","2026-05-01T12:0{n % 10}:00.000Z","false","","{sfid("001", 1)}","Ada",'
        f'"P{n}","p{n}@acme.test","CTO","{sfid("005", 1)}","2026-04-02","2025-01-01T00:00:00.000Z",'
        f'"true","{reason}","","false","","ok","","R&D"\n'
    )


@responses.activate
def test_bulk_always_request_shape_polls_on_our_schedule_and_deletes_the_job():
    add_describe("Contact", CONTACT_FIELDS)
    job = "750A0000000001"
    responses.add(responses.POST, f"{BASE}jobs/query", json={"id": job, "state": "UploadComplete"})
    responses.add(responses.GET, f"{BASE}jobs/query/{job}", json={"id": job, "state": "InProgress"})
    responses.add(
        responses.GET, f"{BASE}jobs/query/{job}", json={"id": job, "state": "JobComplete"}
    )
    responses.add(
        responses.GET,
        f"{BASE}jobs/query/{job}/results",
        body=BULK_CSV + bulk_row(1, 'Mailbox ""full""\nretry') + bulk_row(2),
        headers={"Sforce-Locator": "L1", "Sforce-NumberOfRecords": "2"},
        content_type="text/csv",
    )
    responses.add(
        responses.GET,
        f"{BASE}jobs/query/{job}/results",
        body=BULK_CSV + bulk_row(3),
        headers={"Sforce-Locator": "null", "Sforce-NumberOfRecords": "1"},
        content_type="text/csv",
    )
    responses.add(responses.DELETE, f"{BASE}jobs/query/{job}", status=204)
    conn = connector(bulk="always")
    pages = _pull_contacts(conn)

    create = json.loads(responses.calls[1].request.body)
    assert create["operation"] == "query" and create["contentType"] == "CSV"
    assert create["query"].startswith("SELECT Id, SystemModstamp") and create["query"].endswith(
        "FROM Contact ORDER BY Id"
    )
    results = [c for c in responses.calls if "/results" in c.request.url]
    assert parse_qs(urlsplit(results[0].request.url).query) == {"maxRecords": ["50000"]}
    assert parse_qs(urlsplit(results[1].request.url).query) == {
        "maxRecords": ["50000"],
        "locator": ["L1"],
    }
    assert SLEEPS == [0.5, 1.0]  # polls start short and double (issue 14)
    assert responses.calls[-1].request.method == "DELETE"
    records = [r for p in pages for r in p.records]
    assert [r.id for r in records] == [sfid("003", n) for n in (1, 2, 3)]
    first = records[0]
    assert (
        first.values["email_bounced"] is True
        and first.values["bounce_reason"] == 'Mailbox "full"\nretry'
    )
    assert first.raw["SystemModstamp"] == "2026-05-01T12:01:00.000+0000"  # REST form
    assert first.values["exemption"] is None and first.raw["IsDeleted"] is False
    assert pages[-1].done and pages[-2].cursor["after_id"] == sfid("003", 3)
    assert conn.calls.by_operation == {
        "describe": 1,
        "bulk": 6,
    }  # create, 2 polls, 2 results, delete
    assert conn.stats[ObjectType.CONTACT].path == "bulk"


@responses.activate
def test_p9_failed_bulk_job_falls_back_to_rest_and_deletes_the_job():
    add_describe("Contact", CONTACT_FIELDS)
    job = "750A0000000002"
    responses.add(responses.POST, f"{BASE}jobs/query", json={"id": job, "state": "UploadComplete"})
    responses.add(
        responses.GET,
        f"{BASE}jobs/query/{job}",
        json={"id": job, "state": "Failed", "errorMessage": "x"},
    )
    responses.add(responses.DELETE, f"{BASE}jobs/query/{job}", status=204)
    responses.add(
        responses.GET, f"{BASE}query/", json={"totalSize": 1, "done": True, "records": [contact(1)]}
    )
    conn = connector(bulk="always")
    pages = _pull_contacts(conn)
    assert [r.id for p in pages for r in p.records] == [sfid("003", 1)]
    methods = [
        (c.request.method, urlsplit(c.request.url).path.rsplit("/", 1)[-1]) for c in responses.calls
    ]
    assert ("DELETE", job) in methods and ("PATCH", job) not in methods  # Failed is final: no abort
    assert conn.stats[ObjectType.CONTACT].path == "bulk->rest"


@responses.activate
def test_p9_bulk_job_that_never_completes_is_aborted_within_the_bound():
    add_describe("Contact", CONTACT_FIELDS)
    job = "750A0000000003"
    responses.add(responses.POST, f"{BASE}jobs/query", json={"id": job, "state": "UploadComplete"})
    responses.add(responses.GET, f"{BASE}jobs/query/{job}", json={"id": job, "state": "InProgress"})
    responses.add(responses.PATCH, f"{BASE}jobs/query/{job}", json={"id": job, "state": "Aborted"})
    responses.add(responses.DELETE, f"{BASE}jobs/query/{job}", status=204)
    responses.add(
        responses.GET, f"{BASE}query/", json={"totalSize": 0, "done": True, "records": []}
    )
    conn = connector(bulk="always", bulk_max_wait_seconds=60)
    _pull_contacts(conn)
    assert sum(SLEEPS) <= 60 and SLEEPS == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0][: len(SLEEPS)]
    assert [c.request.method for c in responses.calls if c.request.url.endswith(job)][-2:] == [
        "PATCH",
        "DELETE",
    ]
    assert json.loads(responses.calls[-3].request.body) == {"state": "Aborted"}


def test_bulk_is_chosen_only_when_it_costs_fewer_calls():
    assert bulk_cost(3_000, 50_000) > 2  # a small object stays on REST
    assert bulk_cost(100_000, 50_000) < 50  # 100k rows: Bulk is far cheaper than 50 pages


@responses.activate
def test_auto_switches_to_bulk_after_the_first_page_of_a_large_object():
    add_describe("Contact", CONTACT_FIELDS)
    responses.add(
        responses.GET,
        f"{BASE}query/",
        json={
            "totalSize": 100_000,
            "done": False,
            "nextRecordsUrl": "/services/data/v59.0/query/01gA-2000",
            "records": [contact(1)],
        },
    )
    job = "750A0000000004"
    responses.add(responses.POST, f"{BASE}jobs/query", json={"id": job})
    responses.add(
        responses.GET, f"{BASE}jobs/query/{job}", json={"id": job, "state": "JobComplete"}
    )
    responses.add(
        responses.GET,
        f"{BASE}jobs/query/{job}/results",
        body=BULK_CSV + bulk_row(2),
        headers={"Sforce-Locator": "null"},
        content_type="text/csv",
    )
    responses.add(responses.DELETE, f"{BASE}jobs/query/{job}", status=204)
    conn = connector()
    pages = _pull_contacts(conn)
    assert (
        f"WHERE Id > '{sfid('003', 1)}' ORDER BY Id"
        in json.loads(responses.calls[2].request.body)["query"]
    )
    assert [r.id for p in pages for r in p.records] == [sfid("003", 1), sfid("003", 2)]
    assert conn.stats[ObjectType.CONTACT].path == "rest+bulk"


# ------------------------------------------------------------------ writes


def item(n: int, kind: WriteKind, target: str | None, payload: dict, key: str = "") -> OutboxItem:
    return OutboxItem(n, "salesforce", Write(kind, key or f"k{n}", target, payload))


@responses.activate
def test_w1_collection_update_maps_each_result():
    responses.add(
        responses.PATCH,
        f"{BASE}composite/sobjects",
        json=[
            {"id": sfid("001", 1), "success": True, "errors": []},
            {
                "success": False,
                "errors": [
                    {
                        "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                        "message": "locked",
                        "fields": ["Crmsync_Coverage_Score__c"],
                    }
                ],
            },
            {"success": False, "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "busy"}]},
        ],
    )
    batch = [
        item(
            1,
            WriteKind.UPDATE_ACCOUNT,
            sfid("001", 1),
            {
                "coverage_score": 72,
                "coverage_status": "amber",
                "roles_covered": ["Champion", "Economic Buyer"],
            },
        ),
        item(2, WriteKind.UPDATE_ACCOUNT, sfid("001", 2), {"coverage_score": 10}),
        item(3, WriteKind.UPDATE_ACCOUNT, sfid("001", 3), {"stakeholders": 4}),
        item(4, WriteKind.UPDATE_ACCOUNT, sfid("001", 4), {"Name": "hijack"}),
    ]
    results = connector().write(batch)
    body = json.loads(responses.calls[0].request.body)
    assert body["allOrNone"] is False
    assert body["records"][0] == {
        "attributes": {"type": "Account"},
        "Id": sfid("001", 1),
        "Crmsync_Coverage_Score__c": 72,
        "Crmsync_Coverage_Status__c": "amber",
        "Crmsync_Roles_Covered__c": "Champion; Economic Buyer",
    }
    assert len(body["records"]) == 3  # the unowned field never leaves the machine
    ok, invalid, locked, unowned = results
    assert ok.ok and ok.crm_id == sfid("001", 1)
    assert (
        not invalid.ok
        and invalid.code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
        and not invalid.retryable
    )
    assert "Crmsync_Coverage_Score__c" in invalid.detail
    assert not locked.ok and locked.retryable
    assert not unowned.ok and unowned.code == "UNMAPPED_FIELD"


@responses.activate
def test_updates_are_sent_in_collections_of_200():
    responses.add(
        responses.PATCH, f"{BASE}composite/sobjects", json=[{"success": True, "id": "x"}] * 200
    )
    responses.add(
        responses.PATCH, f"{BASE}composite/sobjects", json=[{"success": True, "id": "x"}] * 50
    )
    batch = [
        item(n, WriteKind.UPDATE_CONTACT, sfid("003", n), {"status": "stale", "reason": "r"})
        for n in range(250)
    ]
    conn = connector()
    results = conn.write(batch)
    assert [len(json.loads(c.request.body)["records"]) for c in responses.calls] == [200, 50]
    assert all(r.ok for r in results) and [r.item_id for r in results] == list(range(250))
    assert json.loads(responses.calls[0].request.body)["records"][0]["Crmsync_Status__c"] == "stale"
    assert conn.calls.by_operation == {"composite": 2}


@responses.activate
def test_w4_tasks_are_upserted_by_crmsync_key():
    add_describe("Task", TASK_FIELDS)  # the key is an External ID
    responses.add(
        responses.PATCH,
        f"{BASE}composite/sobjects/Task/Crmsync_Key__c",
        json=[
            {"id": "00T1", "success": True, "created": True, "errors": []},
            {"id": "00T2", "success": True, "created": False, "errors": []},
        ],
    )
    payload = {
        "subject": "Re-engage Acme",
        "body": "Ada left.",
        "owner_id": sfid("005", 1),
        "due_date": datetime(2026, 5, 8, tzinfo=UTC).date(),
        "priority": "high",
        "status": "open",
        "account_id": sfid("001", 1),
        "contact_id": sfid("003", 1),
        "key": "departed_champion:salesforce:001:003",
    }
    results = connector().write(
        [
            item(1, WriteKind.CREATE_TASK, None, payload),
            item(
                2,
                WriteKind.COMPLETE_TASK,
                "00T2",
                {"body": "Resolved: Ada is back."},
                key="single:1",
            ),
        ]
    )
    (upsert,) = [c for c in responses.calls if c.request.method == "PATCH"]
    assert upsert.request.url.endswith("composite/sobjects/Task/Crmsync_Key__c")
    records = json.loads(upsert.request.body)["records"]
    assert records[0] == {
        "attributes": {"type": "Task"},
        "Subject": "Re-engage Acme",
        "Description": "Ada left.",
        "OwnerId": sfid("005", 1),
        "ActivityDate": "2026-05-08",
        "Priority": "High",
        "Status": "Not Started",
        "WhatId": sfid("001", 1),
        "WhoId": sfid("003", 1),
        "Crmsync_Key__c": "departed_champion:salesforce:001:003",
    }
    assert records[1]["Status"] == "Completed" and records[1]["Crmsync_Key__c"] == "single:1"
    assert [r.ok for r in results] == [True, True] and results[0].crm_id == "00T1"


PLAIN_TASK_FIELDS = tuple(f.replace(":string:external", "") for f in TASK_FIELDS)


def task_row(n: int, key: str) -> dict:
    return {"Id": sfid("00T", n), "SystemModstamp": "2026-05-01T12:00:00.000+0000",
            "Crmsync_Key__c": key, "Status": "Not Started", "IsClosed": False}  # fmt: skip


@responses.activate
def test_w4_without_an_external_id_tasks_are_looked_up_by_key_then_updated_or_created():
    """api-facts §12: the key may not be an External ID; collections upsert needs one (§11)."""
    add_describe("Task", PLAIN_TASK_FIELDS)
    responses.add(responses.GET, f"{BASE}query/",
                  json={"totalSize": 1, "done": True, "records": [task_row(1, "k-there")]})  # fmt: skip
    responses.add(responses.PATCH, f"{BASE}composite/sobjects", json=[
        {"id": sfid("00T", 3), "success": True, "errors": []},
        {"id": sfid("00T", 1), "success": True, "errors": []}])  # fmt: skip
    responses.add(responses.POST, f"{BASE}composite/sobjects",
                  json=[{"id": sfid("00T", 2), "success": True, "errors": []}])  # fmt: skip
    conn = connector()
    results = conn.write([
        item(1, WriteKind.COMPLETE_TASK, sfid("00T", 3), {"body": "done"}, key="k-done"),
        item(2, WriteKind.CREATE_TASK, None, {"subject": "Old"}, key="k-there"),
        item(3, WriteKind.CREATE_TASK, None, {"subject": "New"}, key="k-new"),
    ])  # fmt: skip
    calls = [(c.request.method, urlsplit(c.request.url).path.split("v59.0/")[-1]) for c in responses.calls]
    assert calls == [("GET", "sobjects/Task/describe"), ("GET", "query/"),
                     ("PATCH", "composite/sobjects"), ("POST", "composite/sobjects")]  # fmt: skip
    assert "WHERE Crmsync_Key__c IN ('k-new','k-there')" in soql_of(responses.calls[1])
    updated = json.loads(responses.calls[2].request.body)["records"]
    assert [(r["Id"], r["Crmsync_Key__c"]) for r in updated] == [
        (sfid("00T", 3), "k-done"), (sfid("00T", 1), "k-there")]  # fmt: skip
    created = json.loads(responses.calls[3].request.body)["records"]
    assert created == [{"attributes": {"type": "Task"}, "Subject": "New", "Crmsync_Key__c": "k-new"}]
    assert [(r.ok, r.crm_id) for r in results] == [
        (True, sfid("00T", 3)), (True, sfid("00T", 1)), (True, sfid("00T", 2))]  # fmt: skip


@responses.activate
def test_w4_without_an_external_id_a_lost_create_answer_is_looked_up_before_any_resend():
    add_describe("Task", PLAIN_TASK_FIELDS)
    responses.add(responses.GET, f"{BASE}query/", json={"totalSize": 0, "done": True, "records": []})
    responses.add(responses.POST, f"{BASE}composite/sobjects", body=requests.ConnectionError("reset"))
    responses.add(responses.GET, f"{BASE}query/",
                  json={"totalSize": 1, "done": True, "records": [task_row(7, "k-a")]})  # fmt: skip
    responses.add(responses.POST, f"{BASE}composite/sobjects",
                  json=[{"id": sfid("00T", 8), "success": True, "errors": []}])  # fmt: skip
    conn = connector()
    results = conn.write([item(1, WriteKind.CREATE_TASK, None, {"subject": "A"}, key="k-a"),
                          item(2, WriteKind.CREATE_TASK, None, {"subject": "B"}, key="k-b")])  # fmt: skip
    posts = [json.loads(c.request.body)["records"] for c in responses.calls
             if c.request.method == "POST"]  # fmt: skip
    # the lost create landed k-a: found by the lookup, never sent again; k-b was not: resent
    assert [[r["Crmsync_Key__c"] for r in p] for p in posts] == [["k-a", "k-b"], ["k-b"]]
    assert [(r.ok, r.crm_id) for r in results] == [(True, sfid("00T", 7)), (True, sfid("00T", 8))]
    assert len(SLEEPS) == 1  # one backoff before the lookup


@responses.activate
def test_a_request_refused_whole_rejects_its_items_and_the_rest_lands():
    responses.add(
        responses.PATCH,
        f"{BASE}composite/sobjects",
        status=400,
        json=[{"errorCode": "INVALID_FIELD", "message": "No such column 'Crmsync_Status__c'"}],
    )
    add_describe("Task", TASK_FIELDS)
    responses.add(
        responses.PATCH,
        f"{BASE}composite/sobjects/Task/Crmsync_Key__c",
        json=[{"id": "00T1", "success": True, "errors": []}],
    )
    results = connector().write(
        [
            item(1, WriteKind.UPDATE_CONTACT, sfid("003", 1), {"status": "ok"}),
            item(2, WriteKind.CREATE_TASK, None, {"subject": "s"}),
        ]
    )
    assert (
        not results[0].ok
        and results[0].code == "INVALID_FIELD"
        and "No such column" in results[0].detail
    )
    assert results[1].ok


@responses.activate
def test_find_tasks_by_keys_queries_by_the_key_field():
    add_describe("Task", TASK_FIELDS)
    rec = {
        "Id": "00T000000000001AAA",
        "SystemModstamp": "2026-05-01T12:00:00.000+0000",
        "Crmsync_Key__c": "a:b",
        "Status": "Not Started",
        "IsClosed": False,
    }
    responses.add(
        responses.GET, f"{BASE}query/", json={"totalSize": 1, "done": True, "records": [rec]}
    )
    found = connector().find_tasks_by_keys(["a:b", "it's"])
    assert "WHERE Crmsync_Key__c IN ('a:b','it\\'s')" in soql_of(responses.calls[1])
    assert (
        found["a:b"].id == "00T000000000001AAA" and found["a:b"].values["status"] == "Not Started"
    )


# ------------------------------------------------------------------ setup


def _setup_org(sets: dict[str, str]) -> list[list[dict]]:
    """Callbacks for what setup reads and writes beyond describe and tooling: queries answer
    from `sets` (permission set Name -> Id, none granted or assigned yet), userinfo names the
    user, and each collections POST succeeds per record; returns the POSTed record lists."""
    posted: list[list[dict]] = []

    def query(request):
        soql = parse_qs(urlsplit(request.url).query)["q"][0]
        rows = []
        if "FROM PermissionSet " in soql:
            rows = [{"Id": i, "Name": n} for n, i in sets.items()]
        return 200, {}, json.dumps({"totalSize": len(rows), "done": True, "records": rows})

    def create(request):
        records = json.loads(request.body)["records"]
        posted.append(records)
        out = []
        for n, r in enumerate(records):
            if r["attributes"]["type"] == "PermissionSet":
                sets[r["Name"]] = f"0PS00000000000{len(sets)}"
            out.append({"id": sets.get(r.get("Name"), f"01k{len(posted)}{n}"), "success": True, "errors": []})
        return 200, {}, json.dumps(out)

    responses.add_callback(responses.GET, f"{BASE}query/", callback=query)
    responses.add_callback(responses.POST, f"{BASE}composite/sobjects", callback=create)
    responses.add(responses.GET, f"{INSTANCE}/services/oauth2/userinfo", json={"user_id": sfid("005", 9)})
    return posted


@responses.activate
def test_setup_creates_missing_fields_via_tooling_and_a_dry_run_writes_nothing():
    add_describe("Account", [f for f in ACCOUNT_FIELDS if "Coverage_Score" not in f])
    add_describe("Contact", CONTACT_FIELDS)
    add_describe("Task", [f for f in TASK_FIELDS if not f.startswith("Crmsync_Key")])
    posted = _setup_org({})
    dry = connector().ensure_fields(dry_run=True)
    assert {(c.object, c.field) for c in dry if c.status == "missing"} == {
        ("Account", "Crmsync_Coverage_Score__c"),
        ("Task", "Crmsync_Key__c"),
        ("PermissionSet", "crmsync_integration"),
        ("PermissionSet", "crmsync_read"),
    }
    assert not [c for c in responses.calls if c.request.method != "GET"] and posted == []

    responses.add(
        responses.POST, f"{BASE}tooling/sobjects/CustomField", json={"id": "00N1", "success": True}
    )
    responses.add(
        responses.POST,
        f"{BASE}tooling/sobjects/CustomField",
        status=400,
        json=[{"errorCode": "DUPLICATE_DEVELOPER_NAME", "message": "already exists"}],
    )
    add_describe("Account", [f for f in ACCOUNT_FIELDS if "Coverage_Score" not in f])
    add_describe("Task", [f for f in TASK_FIELDS if not f.startswith("Crmsync_Key")])
    add_describe("Account", ACCOUNT_FIELDS)  # as granted: the second describe sees them
    add_describe("Task", TASK_FIELDS)
    conn = connector()
    checks = conn.ensure_fields(dry_run=False)
    tooling = [json.loads(c.request.body) for c in responses.calls
               if c.request.url.endswith("tooling/sobjects/CustomField")]  # fmt: skip
    assert tooling[0] == {
        "FullName": "Account.Crmsync_Coverage_Score__c",
        "Metadata": {
            "label": "Crmsync Coverage Score",
            "type": "Number",
            "precision": 3,
            "scale": 0,
        },
    }
    assert tooling[1]["FullName"] == "Activity.Crmsync_Key__c"
    assert tooling[1]["Metadata"]["externalId"] is True and tooling[1]["Metadata"]["unique"] is True
    assert not any(m["Metadata"].get("required") for m in tooling)  # never a required field
    by_field = {c.field: c for c in checks}
    assert by_field["Crmsync_Coverage_Score__c"].status == "created"
    key = by_field["Crmsync_Key__c"]
    assert key.status == "exists" and "hidden from the integration user" in key.detail
    assert "an External ID: tasks are upserted by it" in key.detail
    assert by_field["Crmsync_Exempt__c"].status == "exists"
    # the permission sets: created, granted (Task fields as Task.X), the first assigned
    sets = [r for p in posted for r in p if r["attributes"]["type"] == "PermissionSet"]
    assert [r["Name"] for r in sets] == ["crmsync_integration", "crmsync_read"]
    grants = [r for p in posted for r in p if r["attributes"]["type"] == "FieldPermissions"]
    integration = {r["Field"]: r for r in grants if r["ParentId"] == "0PS000000000000"}
    assert integration["Task.Crmsync_Key__c"]["SobjectType"] == "Task"
    assert integration["Task.Crmsync_Key__c"]["PermissionsEdit"] is True
    assert integration["Account.Crmsync_Exempt__c"]["PermissionsEdit"] is False  # only read
    assert not any(f.startswith("Activity.") for f in integration)
    read = {r["Field"]: r for r in grants if r["ParentId"] == "0PS000000000001"}
    assert read["Contact.Crmsync_Status__c"]["PermissionsEdit"] is False
    assert "Task.Crmsync_Key__c" not in read and "Account.Crmsync_Signature__c" not in read
    (assignment,) = [r for p in posted for r in p if r["attributes"]["type"] == "PermissionSetAssignment"]
    assert assignment == {"attributes": {"type": "PermissionSetAssignment"},
                          "AssigneeId": sfid("005", 9), "PermissionSetId": "0PS000000000000"}  # fmt: skip
    assert by_field["crmsync_integration"].status == "created"
    assert "assign the permission set crmsync_read" in by_field["crmsync_read"].detail
    assert conn.calls.by_operation["describe"] == 6 and conn.calls.by_operation["tooling"] == 2


# ------------------------------------------------------------------ reconcile and counting


@responses.activate
def test_d2_reconcile_yields_deletions_for_ids_that_are_gone():
    add_describe("Account", ACCOUNT_FIELDS)
    responses.add(
        responses.GET,
        f"{BASE}query/",
        json={
            "totalSize": 2,
            "done": True,
            "records": [{"Id": sfid("001", 1)}, {"Id": sfid("001", 3)}],
        },
    )
    conn = connector()
    pages = list(conn.reconcile(ObjectType.ACCOUNT, [sfid("001", n) for n in (1, 2, 3)]))
    assert soql_of(responses.calls[1]) == "SELECT Id FROM Account ORDER BY Id"
    assert [(r.id, r.deleted) for p in pages for r in p.records] == [(sfid("001", 2), True)]
    assert pages[-1].done


@pytest.mark.parametrize(
    "url, op",
    [
        ("https://login.salesforce.com/services/Soap/u/59.0", "auth"),
        ("https://x/services/oauth2/token", "auth"),
        (f"{BASE}query/?q=SELECT", "query"),
        (f"{BASE}queryAll/?q=SELECT", "query"),
        (f"{BASE}query/01gA-2000", "query"),
        (f"{BASE}jobs/query/750/results?maxRecords=1", "bulk"),
        (f"{BASE}sobjects/Contact/describe", "describe"),
        (f"{BASE}composite/sobjects/Task/Crmsync_Key__c", "composite"),
        (f"{BASE}tooling/sobjects/CustomField", "tooling"),
        (f"{BASE}sobjects/Contact/deleted/?start=x", "get_deleted"),
    ],
)
def test_calls_are_counted_by_operation(url, op):
    assert operation_of(url) == op


@responses.activate
def test_d2_check_deleted_asks_get_deleted_and_flags_a_gap():
    add_describe("Contact", CONTACT_FIELDS)
    responses.add(
        responses.GET,
        f"{BASE}queryAll/",
        json={"totalSize": 0, "done": True, "records": []},
        headers={"Date": "Fri, 01 May 2026 14:00:00 GMT"},
    )
    responses.add(
        responses.GET,
        f"{BASE}sobjects/Contact/deleted/",
        json={
            "deletedRecords": [
                {"id": sfid("003", 7), "deletedDate": "2026-05-01T13:00:00.000+0000"}
            ],
            "earliestDateAvailable": "2026-05-01T12:30:00.000+0000",
            "latestDateCovered": "2026-05-01T14:00:00.000+0000",
        },
    )
    cursor = {"mode": "incremental", "watermark": T0.isoformat()}
    conn = connector(check_deleted=True)
    pages = list(conn.pull(ObjectType.CONTACT, cursor, full=False, started_at=T0))
    call = responses.calls[-1].request
    assert parse_qs(urlsplit(call.url).query) == {
        "start": ["2026-05-01T11:55:00+00:00"],
        "end": ["2026-05-01T14:00:00+00:00"],
    }
    (gone,) = [r for p in pages for r in p.records]
    assert gone.id == sfid("003", 7) and gone.deleted and gone.values == {}
    assert conn.stats[ObjectType.CONTACT].needs_reconcile  # the log starts after our cursor
    assert conn.calls.by_operation["get_deleted"] == 1


@responses.activate
def test_composite_pages_chain_query_more_through_one_call():
    add_describe("Contact", CONTACT_FIELDS)
    responses.add(
        responses.GET,
        f"{BASE}query/",
        json={
            "totalSize": 5,
            "done": False,
            "nextRecordsUrl": "/services/data/v59.0/query/01gA-1",
            "records": [contact(1)],
        },
    )
    halted = [{"errorCode": "PROCESSING_HALTED", "message": "Invalid reference specified."}]
    responses.add(
        responses.POST,
        f"{BASE}composite",
        json={
            "compositeResponse": [
                {
                    "httpStatusCode": 200,
                    "referenceId": "p0",
                    "body": {
                        "totalSize": 5,
                        "done": False,
                        "nextRecordsUrl": "/services/data/v59.0/query/01gA-2",
                        "records": [contact(2)],
                    },
                },
                {
                    "httpStatusCode": 200,
                    "referenceId": "p1",
                    "body": {
                        "totalSize": 5,
                        "done": True,
                        "records": [contact(3), contact(4), contact(5)],
                    },
                },
                {"httpStatusCode": 400, "referenceId": "p2", "body": halted},
            ]
        },
    )
    conn = connector(composite_pages=5)
    pages = _pull_contacts(conn)
    body = json.loads(responses.calls[2].request.body)
    subs = body["compositeRequest"]
    assert body["allOrNone"] is False and len(subs) == 4  # 4 pages may remain at 1 record a page
    assert subs[0]["url"] == "/services/data/v59.0/query/01gA-1"
    assert subs[1]["url"] == "@{p0.nextRecordsUrl}" and subs[3]["url"] == "@{p2.nextRecordsUrl}"
    assert subs[0]["httpHeaders"] == {"Sforce-Query-Options": "batchSize=2000"}
    assert [len(p.records) for p in pages] == [1, 1, 3, 0]
    assert conn.calls.by_operation == {"describe": 1, "query": 1, "composite": 1}


@responses.activate
def test_composite_subrequest_5xx_is_retried_as_a_whole():
    add_describe("Contact", CONTACT_FIELDS)
    responses.add(
        responses.GET,
        f"{BASE}query/",
        json={
            "totalSize": 4000,
            "done": False,
            "nextRecordsUrl": "/services/data/v59.0/query/01gA-1",
            "records": [contact(1)] * 2000,
        },
    )
    responses.add(
        responses.POST,
        f"{BASE}composite",
        json={
            "compositeResponse": [
                {
                    "httpStatusCode": 503,
                    "referenceId": "p0",
                    "body": [{"errorCode": "SERVER_UNAVAILABLE", "message": "x"}],
                }
            ]
        },
    )
    responses.add(
        responses.POST,
        f"{BASE}composite",
        json={
            "compositeResponse": [
                {
                    "httpStatusCode": 200,
                    "referenceId": "p0",
                    "body": {"totalSize": 4000, "done": True, "records": [contact(2)]},
                }
            ]
        },
    )
    pages = _pull_contacts(connector(composite_pages=5))
    assert [len(p.records) for p in pages] == [2000, 1, 0] and len(SLEEPS) == 1
