"""The Salesforce sandbox behaves as the real API is documented to (issue 12, "## Salesforce").

Each test drives the emulator with unmodified simple-salesforce and checks one
documented behaviour; the source is in the sandbox's comment and in
api-facts §9-§14:

- Bulk API 2.0: UploadComplete -> InProgress -> JobComplete by the sandbox
  clock; CSV datetimes end in Z, null is an empty cell, booleans true/false;
- queryAll continues at /query/<locator>; the recycle bin keeps rows 15 days
  (fewer when full) and getDeleted's earliestDateAvailable moves with a purge;
- collections upsert refuses Id as its key;
- an Activity key field can be made plain (not External ID) by a knob;
- field-level security hides Tooling-created fields until a permission set
  grants them, per user;
- the OAuth refresh_token grant, invalid_grant once revoked, rotation;
- the Date header is the sandbox's clock;
- sObject Describe with If-Modified-Since: 304 Not Modified, no body, while the
  object's metadata is unchanged since that date; a full describe once it changed.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from email.utils import parsedate_to_datetime

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

from crmsync.sandbox.common import sf_id
from crmsync.sandbox.salesforce import (
    CONSUMER_KEY,
    CONSUMER_SECRET,
    INTEGRATION_USER_ID,
    REFRESH_TOKEN,
)

BATCH_200 = {"Sforce-Query-Options": "batchSize=200"}

ACME = sf_id("001", 1)
ANA = sf_id("005", 1)  # an active dataset user: an account manager
BO = sf_id("005", 2)  # inactive


def _job(sf_client, soql: str) -> dict:
    return sf_client.restful("jobs/query", method="POST", json={"operation": "query", "query": soql})


def _results(sf_client, job_id: str) -> str:
    return sf_client._call_salesforce("GET", sf_client.base_url + f"jobs/query/{job_id}/results").text


# ------------------------------------------------------------------ bulk 2.0


def test_bulk_job_moves_through_its_states_by_the_sandbox_clock(sf, sf_client, sf_clock):
    sf.bulk_job_seconds, sf.bulk_job_seconds_per_10k_rows = 4.0, 10_000.0  # 4 s + 1 s per row
    job = _job(sf_client, "SELECT Id FROM Account")  # 3 rows: 7 s
    states = []
    for _ in range(8):
        states.append(sf_client.restful(f"jobs/query/{job['id']}")["state"])
        sf_clock.advance(1)
    assert job["state"] == "UploadComplete"
    assert states == ["UploadComplete"] + ["InProgress"] * 6 + ["JobComplete"]


def test_bulk_csv_has_z_datetimes_empty_nulls_and_true_false(sf, sf_client):
    contact = sf_id("003", 1)
    sf.update("Contact", contact, {"EmailBouncedDate": "2026-10-02T03:04:05.000+0000", "Department": None})
    soql = f"SELECT Id, EmailBouncedDate, SystemModstamp, Department, IsEmailBounced, LastActivityDate FROM Contact WHERE Id = '{contact}'"
    row = next(csv.DictReader(io.StringIO(_results(sf_client, _job(sf_client, soql)["id"]))))
    rest = sf_client.query(soql)["records"][0]
    assert rest["EmailBouncedDate"] == "2026-10-02T03:04:05.000+0000"  # REST JSON
    assert row["EmailBouncedDate"] == "2026-10-02T03:04:05.000Z"  # Bulk CSV
    assert row["SystemModstamp"] == rest["SystemModstamp"].replace("+0000", "Z")
    assert rest["Department"] is None and row["Department"] == ""
    assert rest["IsEmailBounced"] is False and row["IsEmailBounced"] == "false"
    assert row["LastActivityDate"] == rest["LastActivityDate"] == "2026-10-01"


# ------------------------------------------------------------------ queryAll and the recycle bin


def test_query_all_next_records_url_points_at_query_and_keeps_deleted_rows(sf, sf_client):
    deleted = [sf_id("003", n) for n in (250, 400)]
    for cid in deleted:
        sf.delete("Contact", cid)
    first = sf_client.query("SELECT Id, IsDeleted FROM Contact ORDER BY Id", include_deleted=True, headers=BATCH_200)
    assert "/query/" in first["nextRecordsUrl"] and "/queryAll/" not in first["nextRecordsUrl"]
    rows = list(first["records"])
    nxt = first
    while not nxt["done"]:
        nxt = sf_client.query_more(nxt["nextRecordsUrl"], identifier_is_url=True, headers=BATCH_200)
        rows += nxt["records"]
    assert len(rows) == 450
    assert {r["Id"] for r in rows if r["IsDeleted"]} == set(deleted)


def test_recycle_bin_purges_after_15_days_and_earliest_date_available_moves(sf, sf_client, sf_clock):
    gone = sf_id("003", 7)
    sf.delete("Contact", gone)
    deleted_at = sf.record("Contact", gone)["SystemModstamp"]
    sf_clock.advance(14 * 86400)
    assert gone in {r["Id"] for r in sf_client.query_all_iter("SELECT Id FROM Contact WHERE IsDeleted = true", include_deleted=True)}
    sf_clock.advance(86400 + 60)
    rows = list(sf_client.query_all_iter("SELECT Id FROM Contact WHERE IsDeleted = true", include_deleted=True))
    assert gone not in {r["Id"] for r in rows}  # purged for good
    assert sf.record("Contact", gone) is None
    end = sf_clock.now
    body = sf_client.Contact.deleted(end - timedelta(days=1), end)
    assert body["earliestDateAvailable"] == deleted_at[:17] + "00.000+0000"  # its deletion, to the minute


def test_a_full_recycle_bin_purges_its_oldest_rows_after_two_hours(sf, sf_client, sf_clock):
    def in_bin() -> set[str]:
        q = "SELECT Id FROM Contact WHERE IsDeleted = true"
        return {r["Id"] for r in sf_client.query_all_iter(q, include_deleted=True)}

    c = {n: sf_id("003", n) for n in range(11, 17)}
    sf.recycle_bin_capacity = 3
    sf.delete("Contact", c[11])
    sf.delete("Contact", c[12])
    twelve_deleted = sf.record("Contact", c[12])["SystemModstamp"]
    sf_clock.advance(3 * 3600)
    sf.delete("Contact", c[13])
    sf.delete("Contact", c[14])
    assert in_bin() == {c[12], c[13], c[14]}  # 4 in a bin of 3: the oldest went
    sf.delete("Contact", c[15])
    assert in_bin() == {c[13], c[14], c[15]}  # and the next oldest, also 3 hours in
    sf.delete("Contact", c[16])
    assert in_bin() == {c[13], c[14], c[15], c[16]}  # over, but none sat 2 hours: kept
    end = sf_clock.now
    body = sf_client.Contact.deleted(end - timedelta(days=1), end)
    assert body["earliestDateAvailable"] == twelve_deleted[:17] + "00.000+0000"


# ------------------------------------------------------------------ collections upsert


def test_collections_upsert_refuses_id_as_its_key_as_a_whole_request(sf, sf_client):
    records = [{"attributes": {"type": "Account"}, "Id": ACME, "Website": "changed.com"}]
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf_client.restful("composite/sobjects/Account/Id", method="PATCH", json={"allOrNone": False, "records": records})
    assert isinstance(e.value.content, list) and e.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert sf.record("Account", ACME)["Website"] == "acme.com"
    with pytest.raises(SalesforceMalformedRequest):  # a plain field is no key either
        sf_client.restful("composite/sobjects/Account/Website", method="PATCH", json={"allOrNone": False, "records": records})
    with pytest.raises(SalesforceResourceNotFound):  # nor a field that does not exist
        sf_client.restful("composite/sobjects/Account/Nope__c", method="PATCH", json={"allOrNone": False, "records": records})


def test_collections_upsert_record_carrying_an_id_fails_alone(sf, sf_client):
    sf.add_field("Task", "Crmsync_Key__c", "string", external_id=True, unique=True)
    records = [
        {"attributes": {"type": "Task"}, "Crmsync_Key__c": "a", "Subject": "A"},
        {"attributes": {"type": "Task"}, "Crmsync_Key__c": "b", "Id": sf_id("00T", 1), "Subject": "B"},
    ]
    res = sf_client.restful("composite/sobjects/Task/Crmsync_Key__c", method="PATCH", json={"allOrNone": False, "records": records})
    assert res[0]["success"] and res[0]["created"]
    assert not res[1]["success"] and res[1]["errors"][0]["fields"] == ["Id"]


# ------------------------------------------------------------------ Activity External IDs


@pytest.mark.parametrize("mode, external", [("allowed", True), ("plain", False)])
def test_activity_key_field_is_plain_when_the_org_makes_it_so(sf, sf_client, sf_grant, mode, external):
    sf.activity_external_id = mode
    try:
        sf_client.toolingexecute("sobjects/CustomField", method="POST", data={
            "FullName": "Activity.Crmsync_Key__c",
            "Metadata": {"label": "Key", "type": "Text", "length": 80, "externalId": True, "unique": True}})
        sf_grant(sf_client, "Task.Crmsync_Key__c")
        key = {f["name"]: f for f in sf_client.Task.describe()["fields"]}["Crmsync_Key__c"]
        assert (key["externalId"], key["unique"]) == (external, external)
        records = [{"attributes": {"type": "Task"}, "Crmsync_Key__c": "k", "Subject": "S"}]
        if external:
            assert sf_client.restful("composite/sobjects/Task/Crmsync_Key__c", method="PATCH",
                                     json={"allOrNone": False, "records": records})[0]["success"]
        else:
            with pytest.raises(SalesforceMalformedRequest):
                sf_client.restful("composite/sobjects/Task/Crmsync_Key__c", method="PATCH",
                                  json={"allOrNone": False, "records": records})
    finally:
        sf.activity_external_id = "allowed"


def test_activity_external_id_refused_by_the_org(sf, sf_client):
    sf.activity_external_id = "refused"
    try:
        with pytest.raises(SalesforceMalformedRequest) as e:
            sf_client.toolingexecute("sobjects/CustomField", method="POST", data={
                "FullName": "Activity.Crmsync_Key__c",
                "Metadata": {"label": "Key", "type": "Text", "length": 80, "externalId": True}})
        assert e.value.content[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
        sf_client.toolingexecute("sobjects/CustomField", method="POST", data={
            "FullName": "Activity.Crmsync_Key__c", "Metadata": {"label": "Key", "type": "Text", "length": 80}})
    finally:
        sf.activity_external_id = "allowed"


# ------------------------------------------------------------------ field-level security


def _as(sf, sf_session, user: str) -> Salesforce:
    return Salesforce(session_id=sf.new_session(user), instance_url=sf.url, session=sf_session)


def _create_field(sf_client, full: str) -> None:
    sf_client.toolingexecute("sobjects/CustomField", method="POST", data={
        "FullName": full, "Metadata": {"label": "Status", "type": "Text", "length": 20}})


def test_a_new_field_is_hidden_from_everyone_until_granted(sf, sf_client, sf_session, sf_grant):
    _create_field(sf_client, "Contact.Crmsync_Status__c")
    contact = sf_id("003", 1)
    assert "Crmsync_Status__c" not in {f["name"] for f in sf_client.Contact.describe()["fields"]}
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf_client.query("SELECT Crmsync_Status__c FROM Contact")
    assert e.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf_client.Contact.update(contact, {"Crmsync_Status__c": "stale"})
    assert e.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    res = sf_client.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Contact"}, "Id": contact, "Crmsync_Status__c": "stale"}]})
    assert res[0]["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    # bulk and FIELDS(ALL) do not reveal it either
    with pytest.raises(SalesforceMalformedRequest):
        _job(sf_client, "SELECT Crmsync_Status__c FROM Contact")
    row = sf_client.query(f"SELECT FIELDS(ALL) FROM Contact WHERE Id = '{contact}' LIMIT 1")["records"][0]
    assert "Crmsync_Status__c" not in row

    sf_grant(sf_client, "Contact.Crmsync_Status__c")  # to the integration user only
    assert sf_client.Contact.update(contact, {"Crmsync_Status__c": "stale"}) == 204
    assert sf_client.Contact.get(contact)["Crmsync_Status__c"] == "stale"
    ana = _as(sf, sf_session, ANA)  # another user still sees nothing
    assert "Crmsync_Status__c" not in {f["name"] for f in ana.Contact.describe()["fields"]}
    assert "Crmsync_Status__c" not in ana.Contact.get(contact)


def test_a_read_grant_shows_the_field_read_only(sf, sf_client, sf_session, sf_grant):
    _create_field(sf_client, "Contact.Crmsync_Status__c")
    sf_grant(sf_client, "Contact.Crmsync_Status__c")
    contact = sf_id("003", 1)
    sf_client.Contact.update(contact, {"Crmsync_Status__c": "ok"})
    sf_grant(sf_client, "Contact.Crmsync_Status__c", edit=False, user=ANA)
    ana = _as(sf, sf_session, ANA)
    field = {f["name"]: f for f in ana.Contact.describe()["fields"]}["Crmsync_Status__c"]
    assert field["updateable"] is False and field["createable"] is False
    assert ana.query(f"SELECT Crmsync_Status__c FROM Contact WHERE Id = '{contact}'")["records"][0]["Crmsync_Status__c"] == "ok"
    with pytest.raises(SalesforceMalformedRequest) as e:
        ana.Contact.update(contact, {"Crmsync_Status__c": "mine"})
    assert e.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_field_permissions_take_task_fields_and_refuse_what_cannot_be_granted(sf, sf_client):
    sf_client.toolingexecute("sobjects/CustomField", method="POST", data={
        "FullName": "Activity.Crmsync_Key__c", "Metadata": {"label": "Key", "type": "Text", "length": 80}})
    sf_client.toolingexecute("sobjects/CustomField", method="POST", data={
        "FullName": "Account.Must__c", "Metadata": {"label": "Must", "type": "Text", "length": 5, "required": True}})
    ps = sf_client.PermissionSet.create({"Name": "crmsync_test", "Label": "crmsync test"})["id"]

    def fp(field: str, sobject: str, **kw) -> dict:
        return {"ParentId": ps, "SobjectType": sobject, "Field": field, "PermissionsRead": True,
                "PermissionsEdit": True, **kw}

    for bad, sobject in (("Activity.Crmsync_Key__c", "Activity"), ("Account.Must__c", "Account"),
                         ("Account.Nope__c", "Account")):
        with pytest.raises(SalesforceMalformedRequest) as e:
            sf_client.FieldPermissions.create(fp(bad, sobject))
        assert e.value.content[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
        assert e.value.content[0]["message"] == f"Field: bad value for restricted picklist field: {bad}"
    with pytest.raises(SalesforceMalformedRequest) as e:  # edit without read
        sf_client.FieldPermissions.create(fp("Task.Crmsync_Key__c", "Task", PermissionsRead=False))
    assert e.value.content[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    assert sf_client.FieldPermissions.create(fp("Task.Crmsync_Key__c", "Task"))["success"]
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf_client.FieldPermissions.create(fp("Task.Crmsync_Key__c", "Task"))
    assert e.value.content[0]["errorCode"] == "DUPLICATE_VALUE"
    assign = {"AssigneeId": INTEGRATION_USER_ID, "PermissionSetId": ps}
    sf_client.PermissionSetAssignment.create(assign)
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf_client.PermissionSetAssignment.create(assign)
    assert e.value.content[0]["errorCode"] == "DUPLICATE_VALUE"
    with pytest.raises(SalesforceMalformedRequest):  # no permission sets for inactive users
        sf_client.PermissionSetAssignment.create({"AssigneeId": BO, "PermissionSetId": ps})
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf_client.PermissionSet.create({"Name": "crmsync_test", "Label": "again"})
    assert e.value.content[0]["errorCode"] == "DUPLICATE_VALUE"
    # the required field needed no grant: everyone sees it
    assert "Must__c" in {f["name"] for f in sf_client.Account.describe()["fields"]}
    found = sf_client.query(
        f"SELECT Field, PermissionsEdit FROM FieldPermissions WHERE ParentId = '{ps}'")["records"]
    assert [(r["Field"], r["PermissionsEdit"]) for r in found] == [("Task.Crmsync_Key__c", True)]


def test_users_of_a_profile_can_be_queried_for_assignment(sf, sf_client):
    rows = sf_client.query("SELECT Id, Profile.Name FROM User WHERE IsActive = true ORDER BY Id")["records"]
    profiles = {r["Id"]: r["Profile"]["Name"] for r in rows}
    assert profiles[ANA] == "Standard User" and profiles[INTEGRATION_USER_ID] == "System Administrator"


# ------------------------------------------------------------------ auth


def _token(sf, session: requests.Session, **form) -> requests.Response:
    return session.post(sf.url + "/services/oauth2/token", data=form)


def test_refresh_token_grant_answers_like_salesforce(sf, sf_session):
    form = {"grant_type": "refresh_token", "client_id": CONSUMER_KEY, "client_secret": CONSUMER_SECRET,
            "refresh_token": REFRESH_TOKEN}
    ok = _token(sf, sf_session, **form)
    assert ok.status_code == 200
    body = ok.json()
    assert {"access_token", "instance_url", "id", "token_type", "issued_at", "signature", "scope"} <= set(body)
    assert "refresh_token" not in body and body["token_type"] == "Bearer"
    assert body["id"].endswith(f"/{INTEGRATION_USER_ID}")
    client = Salesforce(session_id=body["access_token"], instance_url=body["instance_url"], session=sf_session)
    assert client.query("SELECT COUNT() FROM Account")["totalSize"] == 3

    bad_client = _token(sf, sf_session, **{**form, "client_secret": "nope"})
    assert (bad_client.status_code, bad_client.json()["error"]) == (400, "invalid_client")
    sf.revoke_refresh_tokens()
    revoked = _token(sf, sf_session, **form)
    assert revoked.status_code == 400
    assert revoked.json() == {"error": "invalid_grant", "error_description": "expired access/refresh token"}


def test_refresh_token_rotation_issues_a_new_token_and_retires_the_old(sf, sf_session):
    sf.auth.rotate_refresh_tokens = True
    try:
        form = {"grant_type": "refresh_token", "client_id": CONSUMER_KEY, "client_secret": CONSUMER_SECRET,
                "refresh_token": REFRESH_TOKEN}
        new = _token(sf, sf_session, **form).json()["refresh_token"]
        assert new != REFRESH_TOKEN
        assert _token(sf, sf_session, **form).json()["error"] == "invalid_grant"
        assert _token(sf, sf_session, **{**form, "refresh_token": new}).status_code == 200
    finally:
        sf.auth.rotate_refresh_tokens = False


def test_userinfo_names_the_sessions_user(sf, sf_session):
    sid = sf.new_session(ANA)
    info = sf_session.get(sf.url + "/services/oauth2/userinfo", headers={"Authorization": f"Bearer {sid}"})
    assert info.json()["user_id"] == ANA
    assert sf_session.get(sf.url + "/services/oauth2/userinfo",
                          headers={"Authorization": "Bearer nope"}).status_code == 403


def test_the_date_header_is_the_sandbox_clock(sf, sf_client, sf_clock):
    sf_clock.advance(20 * 86400)
    sf_client.query("SELECT COUNT() FROM Account")
    response = sf_client.session.get(sf.url + "/services/data/")
    assert parsedate_to_datetime(response.headers["Date"]) == sf_clock.now.replace(microsecond=0)


# ------------------------------------------------------------------ describe, If-Modified-Since


def test_describe_answers_304_while_the_metadata_is_unchanged_since_if_modified_since(
    sf, sf_client, sf_clock
):
    # REST API Developer Guide, "sObject Describe": "When using the If-Modified-Since header,
    # if no available object's metadata has changed since the provided date, a 304 Not
    # Modified status code is returned with no response body."
    url = sf_client.base_url + "sobjects/Contact/describe"
    first = sf_client.session.get(url, headers=sf_client.headers)
    assert first.status_code == 200 and first.json()["name"] == "Contact"
    since = {**sf_client.headers, "If-Modified-Since": first.headers["Date"]}

    sf_clock.advance(3600)
    unchanged = sf_client.session.get(url, headers=since)
    assert (unchanged.status_code, unchanged.content) == (304, b"")

    sf_clock.advance(60)
    sf.add_field("Contact", "Hobby__c", "string")
    changed = sf_client.session.get(url, headers=since)
    assert changed.status_code == 200
    assert "Hobby__c" in {f["name"] for f in changed.json()["fields"]}
    again = {**sf_client.headers, "If-Modified-Since": changed.headers["Date"]}
    assert sf_client.session.get(url, headers=again).status_code == 304
    other = sf_client.session.get(sf_client.base_url + "sobjects/Account/describe", headers=since)
    assert other.status_code == 304, "only Contact's metadata changed"
