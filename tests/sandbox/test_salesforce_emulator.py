"""The Salesforce emulator, driven by unmodified simple-salesforce over real HTTPS.

Every test talks TLS to the loopback emulator through
connectors.salesforce.transport.build_session, with REQUESTS_CA_BUNDLE left as
the machine exports it. Fixtures (sf, sf_client, sf_session, sf_clock) live in
tests/sandbox/conftest.py.
"""

from __future__ import annotations

import csv
import io
import tomllib
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.format import format_soql

from crmsync.sandbox.common import sf_id
from crmsync.sandbox.salesforce import (
    CONSUMER_KEY,
    CONSUMER_SECRET,
    PASSWORD,
    SECURITY_TOKEN,
    USERNAME,
    SalesforceSandbox,
)

BATCH_200 = {"Sforce-Query-Options": "batchSize=200"}


def _contact_ids(sf_client, where: str = "", deleted: bool = False) -> list[str]:
    q = "SELECT Id FROM Contact " + where
    return [r["Id"] for r in sf_client.query_all_iter(q, include_deleted=deleted)]


# ------------------------------------------------------------------ auth


def test_password_login_and_session_id_login(sf, sf_session):
    client = Salesforce(username=USERNAME, password=PASSWORD, security_token=SECURITY_TOKEN, session=sf_session)
    assert client.sf_instance == urlsplit(sf.url).netloc
    assert client.query("SELECT COUNT() FROM Account")["totalSize"] == 3

    direct = Salesforce(session_id=sf.new_session(), instance_url=sf.url, session=sf_session)
    # the dataset's 2 users and the integration user the sessions belong to (a real org has it)
    users = direct.query("SELECT Id, Username FROM User")["records"]
    assert len(users) == 3 and USERNAME in {u["Username"] for u in users}
    assert sf.requests.count("login") == 1


def test_bad_password_is_a_soap_login_fault(sf, sf_session):
    with pytest.raises(SalesforceAuthenticationFailed) as e:
        Salesforce(username=USERNAME, password="wrong", security_token=SECURITY_TOKEN, session=sf_session)
    assert e.value.code == "INVALID_LOGIN"


def test_oauth_password_client_credentials_and_jwt_logins(sf, sf_session):
    oauth = Salesforce(username=USERNAME, password=PASSWORD, consumer_key=CONSUMER_KEY,
                       consumer_secret=CONSUMER_SECRET, session=sf_session)
    assert oauth.query("SELECT COUNT() FROM Contact")["totalSize"] == 450

    jwt_client = Salesforce(username=USERNAME, consumer_key=CONSUMER_KEY,
                            privatekey_file=sf.jwt_key_file, session=sf_session)
    assert jwt_client.query("SELECT COUNT() FROM Account")["totalSize"] == 3

    # client_credentials needs a My Domain host; route it to the emulator like any login host.
    sf_session.get_adapter("https://").routes["crmsync.my.salesforce.com"] = urlsplit(sf.url)
    cc = Salesforce(consumer_key=CONSUMER_KEY, consumer_secret=CONSUMER_SECRET,
                    domain="crmsync.my", session=sf_session)
    assert cc.query("SELECT COUNT() FROM User")["totalSize"] == 3

    with pytest.raises(SalesforceAuthenticationFailed) as e:
        Salesforce(username=USERNAME, password=PASSWORD, consumer_key=CONSUMER_KEY,
                   consumer_secret="nope", session=sf_session)
    assert e.value.code == "invalid_client"
    assert sf.requests.count("token") == 4


def test_a2_session_expiry_between_pages_relogs_in_password_mode(sf, sf_client):
    sf.faults.add(kind="expire_session", route="query_more", nth=1)
    ids = [r["Id"] for r in sf_client.query_all_iter("SELECT Id FROM Contact", headers=BATCH_200)]
    assert len(ids) == len(set(ids)) == 450
    assert sf.requests.count("login") == 2  # the fixture's login and one re-login


def test_a2_session_expiry_in_session_mode_raises_expired(sf, sf_session):
    client = Salesforce(session_id=sf.new_session(), instance_url=sf.url, session=sf_session)
    sf.faults.add(kind="expire_session", route="query", nth=1)
    with pytest.raises(SalesforceExpiredSession) as e:
        client.query("SELECT Id FROM Account")
    assert e.value.status == 401
    assert e.value.content[0]["errorCode"] == "INVALID_SESSION_ID"


# ------------------------------------------------------------------ query


def test_query_all_iter_pages_with_batch_size_200(sf, sf_client):
    sf.requests.reset()
    rows = list(sf_client.query_all_iter("SELECT Id, Email FROM Contact ORDER BY Id", headers=BATCH_200))
    assert [r["Id"] for r in rows] == sorted(r["Id"] for r in rows)
    assert len(rows) == 450
    assert sf.requests.count("query") == 1 and sf.requests.count("query_more") == 2
    first = sf_client.query("SELECT Id FROM Contact", headers={"Sforce-Query-Options": "batchSize=50"})
    assert first["totalSize"] == 450 and len(first["records"]) == 200  # clamped to 200
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/")


def test_query_parent_fields_filters_order_and_count(sf, sf_client):
    res = sf_client.query(
        "SELECT Id, LastName, Account.Name, Account.Owner.Email FROM Contact "
        "WHERE (Account.Tier__c = 'strategic' OR Account.Name LIKE 'glob%') AND NOT Title = 'Engineer' "
        "AND Email != null ORDER BY Account.Name DESC, LastName ASC NULLS LAST LIMIT 5 OFFSET 1"
    )
    recs = res["records"]
    assert len(recs) == 5
    assert recs[0]["attributes"]["type"] == "Contact"
    assert recs[0]["Account"]["attributes"]["type"] == "Account"
    assert {r["Account"]["Name"] for r in recs} <= {"Globex", "Acme"}
    assert recs[0]["Account"]["Owner"]["Email"] == "ana@sandbox.test"
    names = [(r["Account"]["Name"], r["LastName"]) for r in recs]
    assert names == sorted(names, key=lambda x: (-ord(x[0][0]), x[1]))

    initech = sf_id("001", 3)
    nulls = sf_client.query(f"SELECT Id, Account.Tier__c FROM Contact WHERE AccountId IN ('{initech}') LIMIT 1")
    assert nulls["records"][0]["Account"]["Tier__c"] is None
    since = sf_client.query(
        "SELECT COUNT() FROM Contact WHERE SystemModstamp >= 2026-10-22T16:20:00Z AND IsEmailBounced = false"
    )
    assert since["totalSize"] == sum(1 for i in range(250, 451) if i % 25 != 3)
    dates = sf_client.query("SELECT Id FROM Contact WHERE LastActivityDate = 2026-10-01 AND Title NOT IN ('CFO')")
    assert dates["totalSize"] == sum(1 for i in range(1, 451) if i % 2 and i % 10)
    roles = sf_client.query("SELECT Role, Contact.Email, Opportunity.AccountId FROM OpportunityContactRole "
                            "WHERE Role != null ORDER BY Role")
    assert [r["Role"] for r in roles["records"]] == ["Champion", "Economic Buyer"]
    assert roles["records"][0]["Opportunity"]["AccountId"] == sf_id("001", 1)


def test_query_errors_are_salesforce_shaped(sf, sf_client):
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf_client.query("SELECT Id, Foo__c FROM Contact")
    assert e.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Foo__c' on entity 'Contact'" in e.value.content[0]["message"]
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf_client.query("SELECT Id FROM Lead__x")
    assert e.value.content[0]["errorCode"] == "INVALID_TYPE"
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf_client.query("SELECT Id FROM Contact WHERE")
    assert e.value.content[0]["errorCode"] == "MALFORMED_QUERY"
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf_client.query("SELECT Id FROM Contact WHERE CreatedDate > '2026-01-01'")
    assert e.value.content[0]["errorCode"] == "INVALID_QUERY_FILTER_OPERATOR"


def test_d1_query_all_shows_deleted_rows(sf, sf_client):
    gone = sf_id("003", 5)
    sf_client.Contact.delete(gone)
    assert gone not in _contact_ids(sf_client)
    rows = sf_client.query_all(f"SELECT Id, IsDeleted FROM Contact WHERE Id = '{gone}'", include_deleted=True)
    assert rows["records"][0]["IsDeleted"] is True
    with pytest.raises(SalesforceResourceNotFound):
        sf_client.Contact.get(gone)
    champion = sf_id("003", 3)  # deleting a contact deletes its opportunity contact roles
    sf.delete("Contact", champion)
    roles = sf_client.query_all("SELECT ContactId, IsDeleted FROM OpportunityContactRole", include_deleted=True)
    assert {r["ContactId"]: r["IsDeleted"] for r in roles["records"]}[champion] is True


# ------------------------------------------------------------------ bulk 2.0


def test_bulk2_query_returns_all_rows_over_chunks(sf, sf_client):
    chunks = list(sf_client.bulk2.Contact.query(
        "SELECT Id, Email, Account.Name, IsEmailBounced FROM Contact", max_records=200, wait=0))
    assert len(chunks) == 3
    rows = [r for c in chunks for r in csv.DictReader(io.StringIO(c))]
    assert len(rows) == 450 and len({r["Id"] for r in rows}) == 450
    assert set(rows[0]) == {"Id", "Email", "Account.Name", "IsEmailBounced"}
    assert {r["IsEmailBounced"] for r in rows} == {"true", "false"}
    assert sf.requests.count("bulk2_query_results") == 3


def test_p9_bulk2_job_completes_after_configured_time_on_the_clock(sf, sf_client, sf_clock):
    """UploadComplete -> InProgress -> JobComplete by the sandbox clock; results before the
    end answer 412 JOB_NOT_COMPLETE with the documented message (api-facts §9)."""
    sf.bulk_job_seconds = 30
    job = sf_client.restful("jobs/query", method="POST", json={"operation": "query", "query": "SELECT Id FROM Account"})
    assert job["state"] == "UploadComplete"
    assert sf_client.restful(f"jobs/query/{job['id']}")["state"] == "UploadComplete"  # queued
    sf_clock.advance(5)
    assert sf_client.restful(f"jobs/query/{job['id']}")["state"] == "InProgress"
    with pytest.raises(SalesforceGeneralError) as e:
        sf_client.restful(f"jobs/query/{job['id']}/results")
    assert e.value.status == 412
    assert e.value.content[0]["errorCode"] == "JOB_NOT_COMPLETE"
    assert e.value.content[0]["message"] == (
        "can only download query results of successfully completed bulk job with status: "
        "JOB_COMPLETE. Current status: IN_PROGRESS"
    )
    sf_clock.advance(26)
    info = sf_client.restful(f"jobs/query/{job['id']}")
    assert info["state"] == "JobComplete" and info["numberRecordsProcessed"] == 3
    assert sf.requests.count("bulk2_query_poll") == 3


# ------------------------------------------------------------------ describe and tooling


def test_describe_lists_standard_and_dataset_custom_fields(sf, sf_client):
    fields = {f["name"]: f for f in sf_client.Account.describe()["fields"]}
    assert fields["Name"]["type"] == "string" and not fields["Name"]["custom"]
    assert fields["OwnerId"]["referenceTo"] == ["User"] and fields["OwnerId"]["relationshipName"] == "Owner"
    assert fields["Tier__c"]["custom"] and fields["Renewal_Date__c"]["type"] == "date"
    stages = {f["name"]: f for f in sf_client.Opportunity.describe()["fields"]}["StageName"]
    assert "Closed Won" in [p["value"] for p in stages["picklistValues"]]
    names = {o["name"] for o in sf_client.describe()["sobjects"]}
    assert {"User", "Account", "Contact", "Opportunity", "OpportunityContactRole", "Task"} <= names


def test_x4_tooling_custom_field_is_described_writable_and_queryable_once_granted(sf, sf_client, sf_grant):
    body = {"FullName": "Account.Crmsync_Coverage_Score__c",
            "Metadata": {"label": "Coverage Score", "type": "Number", "precision": 3, "scale": 0}}
    res = sf_client.toolingexecute("sobjects/CustomField", method="POST", data=body)
    assert res["success"] is True
    sf_client.toolingexecute("sobjects/CustomField", method="POST", data={
        "FullName": "Activity.Crmsync_Key__c", "Metadata": {"label": "Key", "type": "Text", "length": 80, "externalId": True}})
    sf_grant(sf_client, "Account.Crmsync_Coverage_Score__c", "Task.Crmsync_Key__c")
    field = {f["name"]: f for f in sf_client.Account.describe()["fields"]}["Crmsync_Coverage_Score__c"]
    assert field["type"] == "double" and field["custom"] and field["updateable"]
    acme = sf_id("001", 1)
    assert sf_client.Account.update(acme, {"Crmsync_Coverage_Score__c": 72}) == 204
    assert sf_client.query(f"SELECT Crmsync_Coverage_Score__c FROM Account WHERE Id = '{acme}'")["records"][0]["Crmsync_Coverage_Score__c"] == 72
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf_client.toolingexecute("sobjects/CustomField", method="POST", data=body)
    assert e.value.content[0]["errorCode"] == "DUPLICATE_DEVELOPER_NAME"
    key = {f["name"]: f for f in sf_client.Task.describe()["fields"]}["Crmsync_Key__c"]
    assert key["externalId"] is True
    created = sf_client.Task.upsert("Crmsync_Key__c/k-1", {"Subject": "Fix", "WhatId": acme})
    assert created == 201
    assert sf_client.Task.upsert("Crmsync_Key__c/k-1", {"Subject": "Fix it"}) == 200
    task = sf_client.query("SELECT Subject, Status, IsClosed, AccountId FROM Task WHERE Crmsync_Key__c = 'k-1'")["records"]
    assert task[0]["Subject"] == "Fix it" and task[0]["Status"] == "Not Started" and task[0]["IsClosed"] is False
    assert task[0]["AccountId"] == acme


# ------------------------------------------------------------------ writes


def test_w1_collection_update_one_rejected_record_others_land(sf, sf_client):
    bad = sf_id("001", 2)
    sf.faults.add(kind="reject_write", match={"object": "Account", "id": bad},
                  code="FIELD_CUSTOM_VALIDATION_EXCEPTION", message="Website is locked", fields=["Website"])
    records = [{"attributes": {"type": "Account"}, "Id": sf_id("001", i), "Website": f"new{i}.com"} for i in (1, 2, 3)]
    res = sf_client.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": records})
    assert res[0] == {"id": sf_id("001", 1), "success": True, "errors": []}
    assert res[1] == {"success": False, "errors": [{"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                                                    "message": "Website is locked", "fields": ["Website"]}]}
    assert res[2]["success"] is True
    sites = {r["Id"]: r["Website"] for r in sf.records("Account")}
    assert sites[sf_id("001", 1)] == "new1.com" and sites[bad] == "globex.com"


def test_collection_all_or_none_rolls_back_everything(sf, sf_client):
    records = [
        {"attributes": {"type": "Task"}, "Subject": "ok", "WhoId": sf_id("003", 1)},
        {"attributes": {"type": "Task"}, "Subject": "bad", "No_Such__c": 1},
    ]
    res = sf_client.restful("composite/sobjects", method="POST", json={"allOrNone": True, "records": records})
    assert res[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert res[1]["errors"][0]["statusCode"] == "INVALID_FIELD"
    assert len(sf.records("Task")) == 1
    res = sf_client.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": records})
    assert res[0]["success"] and not res[1]["success"]
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf_client.restful("composite/sobjects", method="POST", json={"records": records[:1] * 201})
    assert e.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_single_record_crud_validates_fields(sf, sf_client):
    new = sf_client.Contact.create({"LastName": "Ng", "Email": "ng@acme.com", "AccountId": sf_id("001", 1)})
    assert new["success"] and new["id"].startswith("003") and len(new["id"]) == 18
    got = sf_client.Contact.get(new["id"])
    assert got["Name"] == "Ng" and got["OwnerId"] and got["attributes"]["type"] == "Contact"
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf_client.Contact.create({"Email": "x@y.com"})
    assert e.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf_client.Contact.update(new["id"], {"IsEmailBounced": True})
    assert e.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf_client.Contact.update(new["id"], {"AccountId": sf_id("001", 99)})
    assert e.value.content[0]["errorCode"] == "INVALID_CROSS_REFERENCE_KEY"


def test_system_modstamp_strictly_increasing(sf, sf_client):
    ids = [sf_id("003", i) for i in range(1, 6)]
    for i in ids:  # the fake clock does not move: stamps must still increase
        sf_client.Contact.update(i, {"Title": "VP"})
    rows = sf_client.query_all(format_soql(
        "SELECT Id, SystemModstamp, LastModifiedDate FROM Contact WHERE Id IN {}", ids))["records"]
    stamps = [r["SystemModstamp"] for r in sorted(rows, key=lambda r: ids.index(r["Id"]))]
    assert stamps == sorted(stamps) and len(set(stamps)) == 5
    assert all(r["SystemModstamp"] == r["LastModifiedDate"] for r in rows)
    newest = sf_client.query("SELECT Id FROM Contact ORDER BY SystemModstamp DESC LIMIT 1")["records"][0]["Id"]
    assert newest == ids[-1]


def test_composite_runs_subrequests_as_one_call(sf, sf_client):
    used_before = sf.usage.used
    res = sf_client.restful("composite", method="POST", json={"allOrNone": False, "compositeRequest": [
        {"method": "GET", "url": "/services/data/v59.0/query?q=SELECT+Id+FROM+Contact", "referenceId": "q1",
         "httpHeaders": {"Sforce-Query-Options": "batchSize=200"}},
        {"method": "GET", "url": "@{q1.nextRecordsUrl}", "referenceId": "q2"},
        {"method": "PATCH", "url": f"/services/data/v59.0/sobjects/Account/{sf_id('001', 1)}",
         "referenceId": "a1", "body": {"Website": "acme.io"}},
    ]})
    codes = [r["httpStatusCode"] for r in res["compositeResponse"]]
    assert codes == [200, 200, 204]
    assert len(res["compositeResponse"][1]["body"]["records"]) == 200
    assert sf.usage.used == used_before + 1


# ------------------------------------------------------------------ faults and limits


def test_r7_503_fault_raises_general_error(sf, sf_client):
    sf.faults.add(kind="status", status=503, route="query")
    with pytest.raises(SalesforceGeneralError) as e:
        sf_client.query("SELECT Id FROM Account")
    assert e.value.status == 503
    assert e.value.content[0]["errorCode"] == "SERVER_UNAVAILABLE"


def test_r5_request_limit_exceeded_is_refused(sf, sf_client):
    sf.set_api_usage(used=49_500, max=100_000)
    sf_client.query("SELECT Id FROM Account")
    assert sf_client.api_usage["api-usage"].used == 49_501
    assert sf_client.api_usage["api-usage"].total == 100_000
    sf.set_api_usage(used=100_000)
    with pytest.raises(SalesforceRefusedRequest) as e:
        sf_client.query("SELECT Id FROM Account")
    assert e.value.content == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    sf.faults.add(kind="rate_limit", route="sobject_describe")
    sf.set_api_usage(used=0)
    with pytest.raises(SalesforceRefusedRequest):
        sf_client.Contact.describe()
    assert sf_client.limits()["DailyApiRequests"]["Max"] == 100_000


def test_r7_drop_connection_and_p8_query_timeout(sf, sf_client):
    sf.faults.add(kind="drop_connection", route="query", nth=1)
    with pytest.raises(requests.ConnectionError):
        sf_client.query("SELECT Id FROM Account")
    sf.faults.add(kind="drop_connection", route="query", nth=1, bytes=20)
    with pytest.raises(requests.RequestException):
        sf_client.query("SELECT Id FROM Account")
    sf.faults.clear()
    sf.faults.add(kind="query_timeout", route="query*", window_days=7)
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf_client.query("SELECT Id FROM Contact WHERE SystemModstamp >= 2026-09-01T00:00:00Z")
    assert e.value.content[0]["errorCode"] == "QUERY_TIMEOUT"
    assert sf_client.query("SELECT COUNT() FROM Contact WHERE SystemModstamp >= 2026-10-30T00:00:00Z")["totalSize"] == 0


# ------------------------------------------------------------------ replication, merges, purge


def test_updated_and_deleted_endpoints(sf, sf_client, sf_clock):
    start = sf_clock.now - timedelta(hours=1)
    sf_client.Contact.update(sf_id("003", 7), {"Title": "CTO"})
    sf_client.Contact.delete(sf_id("003", 8))
    sf_clock.advance(120)
    updated = sf_client.Contact.updated(start, sf_clock.now)
    assert updated["ids"] == [sf_id("003", 7)]
    deleted = sf_client.Contact.deleted(start, sf_clock.now)
    assert [d["id"] for d in deleted["deletedRecords"]] == [sf_id("003", 8)]
    assert deleted["latestDateCovered"] == sf_clock.now.strftime("%Y-%m-%dT%H:%M:00.000+0000")
    before = deleted["earliestDateAvailable"]
    sf.purge("Contact", sf_id("003", 8))
    sf_clock.advance(120)
    after = sf_client.Contact.deleted(start, sf_clock.now)
    assert after["deletedRecords"] == [] and after["earliestDateAvailable"] > before
    assert sf_id("003", 8) not in _contact_ids(sf_client, deleted=True)
    with pytest.raises(SalesforceMalformedRequest):
        sf_client.Contact.updated(datetime(2026, 11, 1), datetime(2026, 11, 1, 1))  # naive: malformed
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf_client.Contact.updated(datetime(2026, 1, 1, tzinfo=UTC), sf_clock.now)
    assert e.value.content[0]["errorCode"] == "INVALID_REPLICATION_DATE"


def test_d5_merge_visible_via_query_all_with_master_record_id(sf, sf_client):
    master, loser = sf_id("003", 6), sf_id("003", 3)  # 3 is the Champion on opportunity 1
    sf.merge("Contact", master, [loser])
    rows = sf_client.query_all(f"SELECT Id, IsDeleted, MasterRecordId FROM Contact WHERE Id = '{loser}'",
                               include_deleted=True)["records"]
    assert rows[0]["IsDeleted"] is True and rows[0]["MasterRecordId"] == master
    roles = sf_client.query("SELECT ContactId, Role FROM OpportunityContactRole WHERE Role = 'Champion'")["records"]
    assert roles[0]["ContactId"] == master
    task = sf_client.query("SELECT WhoId FROM Task")["records"][0]
    assert task["WhoId"] == master


# ------------------------------------------------------------------ sandbox control and config


def test_sandbox_control_routes(sf, sf_client):
    sf.requests.reset()
    sf_client.query("SELECT Id FROM Account")
    s = requests.Session()
    s.trust_env = False
    counts = s.get(f"{sf.url}/_sandbox/requests", verify=sf.ca_file).json()
    assert counts["by_route"] == {"GET query": 1}
    records = s.get(f"{sf.url}/_sandbox/records/Account", verify=sf.ca_file).json()
    assert len(records) == 3 and "attributes" not in records[0]
    s.post(f"{sf.url}/_sandbox/faults", data='status:status=500,route=query', verify=sf.ca_file)
    with pytest.raises(SalesforceGeneralError):
        sf_client.query("SELECT Id FROM Account")
    assert s.post(f"{sf.url}/_sandbox/reset", verify=sf.ca_file).json() == {"ok": True}
    assert sf.requests.counts()["total"] == 0


def test_write_config_writes_a_loadable_table_and_files(tmp_path):
    with SalesforceSandbox(tls=True) as sb:
        cfg = tmp_path / "sync.toml"
        cfg.write_text('[mirror]\npath = "m.db"\n\n[salesforce]\nauth = "jwt"\n', encoding="utf-8")
        sb.write_config(cfg)
        data = tomllib.loads(cfg.read_text(encoding="utf-8"))
        table = data["salesforce"]
        assert data["mirror"] == {"path": "m.db"}
        assert table["auth"] == "password" and table["login_url"] == sb.url == table["instance_url"]
        for key in ("ca_file", "password_file", "security_token_file", "private_key_file"):
            assert (tmp_path / table[key]).exists()
        assert (tmp_path / table["password_file"]).read_text().strip() == PASSWORD


# ------------------------------------------------------------------ schema changes and more faults


def test_x5_removed_field_is_an_invalid_field_and_added_field_is_described(sf, sf_client):
    sf.remove_field("Account", "Tier__c")
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf_client.query("SELECT Id, Tier__c FROM Account")
    assert e.value.content[0]["errorCode"] == "INVALID_FIELD" and "Tier__c" in e.value.content[0]["message"]
    assert "Tier__c" not in {f["name"] for f in sf_client.Account.describe()["fields"]}
    sf.add_field("Contact", "Left_Company__c", "Checkbox")
    field = {f["name"]: f for f in sf_client.Contact.describe()["fields"]}["Left_Company__c"]
    assert field["type"] == "boolean" and field["custom"]


def test_soql_id_keyset_date_literals_and_not(sf, sf_client):
    after = sf_id("003", 100)
    ids = [r["Id"] for r in sf_client.query(f"SELECT Id FROM Contact WHERE Id > '{after}' ORDER BY Id LIMIT 5")["records"]]
    assert ids == sorted(ids) and all(i > after for i in ids) and len(ids) == 5
    assert sf_client.query("SELECT COUNT() FROM Contact WHERE CreatedDate = LAST_N_DAYS:30")["totalSize"] == 450
    assert sf_client.query("SELECT COUNT() FROM Contact WHERE CreatedDate = LAST_N_DAYS:5")["totalSize"] == 0
    assert sf_client.query("SELECT COUNT() FROM Contact WHERE CreatedDate < TODAY")["totalSize"] == 450
    no_email = sf_client.query("SELECT COUNT() FROM Contact WHERE NOT (Email != null)")["totalSize"]
    assert no_email == 9
    assert sf_client.query("SELECT COUNT() FROM Contact WHERE Email NOT IN ('c1@example.com')")["totalSize"] == 449
    first = sf_client.query("SELECT Email FROM Contact ORDER BY Email ASC NULLS FIRST LIMIT 1")["records"][0]
    assert first["Email"] is None


def test_p3_mutate_while_paging_and_expired_locator(sf, sf_client):
    target = sf_id("003", 1)
    sf.faults.add(kind="mutate", route="query_more", nth=1, object="Contact", id=target, fields={"Title": "CEO"})
    rows = list(sf_client.query_all_iter("SELECT Id, Title FROM Contact ORDER BY Id", headers=BATCH_200))
    assert len(rows) == 450
    assert sf.record("Contact", target)["Title"] == "CEO"
    sf.faults.add(kind="expire_locators", route="query_more", nth=1)
    with pytest.raises(SalesforceMalformedRequest) as e:
        list(sf_client.query_all_iter("SELECT Id FROM Contact", headers=BATCH_200))
    assert e.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_w9_post_write_rule_rewrites_our_value(sf, sf_client):
    acme = sf_id("001", 1)
    sf.faults.add(kind="post_write", match={"object": "Account", "Website": "bad.com"}, set={"Website": "good.com"})
    sf_client.Account.update(acme, {"Website": "bad.com"})
    assert sf_client.Account.get(acme)["Website"] == "good.com"


def test_r9_concurrent_limit_and_p9_failed_bulk_job(sf, sf_client):
    from simple_salesforce.exceptions import SalesforceOperationError

    sf.faults.add(kind="concurrent_limit", route="query", limit=0, nth=1)
    with pytest.raises(SalesforceRefusedRequest) as e:
        sf_client.query("SELECT Id FROM Account")
    assert e.value.content[0]["message"].startswith("ConcurrentRequests")
    sf.faults.add(kind="bulk_job_state", route="bulk2_query_poll", state="Failed", message="boom")
    with pytest.raises(SalesforceOperationError):
        list(sf_client.bulk2.Contact.query("SELECT Id FROM Contact", wait=0))


def test_writes_with_inactive_owner_are_rejected(sf, sf_client):
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf_client.Task.create({"Subject": "Call", "OwnerId": sf_id("005", 2), "WhatId": sf_id("001", 3)})
    assert e.value.content[0]["errorCode"] == "INACTIVE_OWNER_OR_USER"


def test_w6_bulk2_ingest_rejects_bad_rows_alone(sf, sf_client):
    ids = [sf_id("003", i) for i in (1, 2, 3)]
    records = [
        {"Id": ids[0], "Title": 'Says "hi",\nnew line', "Department": "#N/A"},
        {"Id": ids[1], "Title": "x" * 200},  # Title is 128 characters at most
        {"Id": ids[2], "Title": "", "Department": "Sales"},  # empty = leave Title alone
    ]
    sf.update("Contact", ids[0], {"Department": "Ops"})
    res = sf_client.bulk2.Contact.update(records=records, wait=0)
    assert res[0]["numberRecordsProcessed"] == 3 and res[0]["numberRecordsFailed"] == 1
    first, third = sf.record("Contact", ids[0]), sf.record("Contact", ids[2])
    assert first["Title"] == 'Says "hi",\nnew line' and first["Department"] is None
    assert third["Title"] == "Engineer" and third["Department"] == "Sales"
    failed = sf_client.bulk2.Contact.get_failed_records(res[0]["job_id"])
    rows = list(csv.DictReader(io.StringIO(failed)))
    assert rows[0]["Id"] == ids[1] and rows[0]["sf__Error"].startswith("STRING_TOO_LONG:")
    created = sf_client.bulk2.Task.insert(records=[{"Subject": "Call", "WhoId": ids[2]}], wait=0)
    assert created[0]["numberRecordsFailed"] == 0 and len(sf.records("Task")) == 2
