"""The HubSpot emulator, driven by the unmodified hubspot-api-client 12 over real HTTP.

Each test asserts what a client (crmsync's HubSpot connector) would notice:
the model the client deserialises, the exception class, status and HubSpot
error body it raises, and the records the emulator holds afterwards. Tests
named r*/a*/p*/d*/w*/x* cover the docs/reliability.md row with that id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3
from hubspot import HubSpot
from hubspot.crm.contacts.exceptions import (
    NotFoundException,
    ServiceException,
    UnauthorizedException,
)
from urllib3.util.retry import Retry

from crmsync.sandbox.hubspot import HubSpotSandbox
from tests.sandbox.conftest import HS_EPOCH_S

TOKEN = "pat-sandbox-0000"


def _body(e: Any) -> dict:
    return json.loads(e.body)


@contextmanager
def api_error(status: int) -> Iterator[Any]:
    """Any hubspot ApiException with this status (each API package has its own class)."""
    with pytest.raises(Exception) as info:
        yield info
    assert getattr(info.value, "status", None) == status, info.value


def _search(client: HubSpot, obj: str = "contacts", **body):
    api = client.crm.contacts.search_api if obj == "contacts" else client.crm.objects.search_api
    if obj == "contacts":
        return api.do_search(public_object_search_request=body)
    return api.do_search(obj, public_object_search_request=body)


def _ids(page) -> list[str]:
    return [r.id for r in page.results]


# ------------------------------------------------------------------ list and read


def test_list_pages_across_all_contacts_with_inline_associations(hs, hs_client):
    basic = hs_client.crm.contacts.basic_api
    seen, after, pages = [], None, 0
    while True:
        page = basic.get_page(limit=100, after=after, properties=["email", "jobtitle"],
                              associations=["companies"])
        pages += 1
        seen += _ids(page)
        first = page.results[0]
        assert set(first.properties) >= {"email", "jobtitle", "hs_object_id", "createdate",
                                         "lastmodifieddate"}
        assert first.associations["companies"].results[0].type in ("contact_to_company",
                                                                    "contact_to_company_unlabeled")
        if not page.paging or not page.paging.next:
            break
        after = page.paging.next.after
    assert pages == 3
    assert seen == [str(i) for i in range(2001, 2251)]


def test_list_default_limit_is_10_and_cap_is_100(hs, hs_client):
    basic = hs_client.crm.contacts.basic_api
    assert len(basic.get_page().results) == 10
    assert len(basic.get_page(limit=500).results) == 100


def test_list_accepts_comma_separated_properties_and_capitalised_booleans(hs):
    r = requests.get(f"{hs.url}/crm/v3/objects/0-1", params={"properties": "email,jobtitle",
                     "archived": "False", "limit": "2"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    assert {"email", "jobtitle"} <= set(r.json()["results"][0]["properties"])


def test_get_by_id_by_email_and_404(hs, hs_client):
    basic = hs_client.crm.contacts.basic_api
    rec = basic.get_by_id("2121", properties=["email"], associations=["deals"])
    assert rec.properties["email"] == "c2121@acme.com"
    assert rec.associations["deals"].results[0].id == "3001"
    assert basic.get_by_id("c2121@acme.com", id_property="email").id == "2121"
    with pytest.raises(NotFoundException) as e:
        basic.get_by_id("999999")
    assert _body(e.value)["category"] == "OBJECT_NOT_FOUND"


def test_x7_company_with_over_100_contacts_pages_its_inline_associations(hs, hs_client):
    rec = hs_client.crm.companies.basic_api.get_by_id("1003", associations=["contacts"])
    block = rec.associations["contacts"]
    assert len(block.results) == 100
    assert block.paging.next.after
    v4 = hs_client.crm.associations.v4.basic_api.get_page("companies", "1003", "contacts", limit=500)
    assert len(v4.results) == 120


def test_unknown_dataset_properties_become_custom_properties(hs, hs_client):
    prop = hs_client.crm.properties.core_api.get_by_name("companies", "crm_region")
    assert (prop.type, prop.hubspot_defined) == ("string", False)
    assert hs_client.crm.properties.core_api.get_by_name("companies", "renewal_date").type == "date"
    rec = hs_client.crm.companies.basic_api.get_by_id("1001", properties=["crm_region"])
    assert rec.properties["crm_region"] == "EMEA"


# ------------------------------------------------------------------ writes


def test_create_201_update_200_and_modified_dates_strictly_increase(hs, hs_client, hs_clock):
    basic = hs_client.crm.contacts.basic_api
    made = basic.create(simple_public_object_input_for_create={
        "properties": {"email": "new@acme.com", "firstname": "New"}})
    assert made is not None and made.properties["email"] == "new@acme.com"
    first = made.properties["lastmodifieddate"]
    upd = basic.update(made.id, simple_public_object_input={"properties": {"jobtitle": "CTO"}})
    assert upd.properties["jobtitle"] == "CTO"
    again = basic.get_by_id(made.id, properties=["hs_lastmodifieddate", "lastmodifieddate"])
    assert again.properties["lastmodifieddate"] > first  # same clock instant, still later
    assert again.properties["hs_lastmodifieddate"] == again.properties["lastmodifieddate"]
    assert again.properties["hs_object_id"] == made.id


def test_w2_batch_update_with_one_failing_input_answers_207(hs, hs_client):
    hs.faults.add(kind="reject_write", match={"object": "contacts", "id": "2002"},
                  code="INVALID_OPTION", message="Title is locked")
    res = hs_client.crm.contacts.batch_api.update(batch_input_simple_public_object_batch_input={
        "inputs": [{"id": i, "properties": {"jobtitle": "Changed"}} for i in ("2001", "2002", "2003")]
        + [{"id": "999999", "properties": {"jobtitle": "x"}}]})
    assert sorted(r.id for r in res.results) == ["2001", "2003"]
    assert res.num_errors == 2
    by_cat = {e.category: e for e in res.errors}
    assert by_cat["OBJECT_NOT_FOUND"].context == {"ids": ["999999"]}
    assert by_cat["VALIDATION_ERROR"].context["ids"] == ["2002"]
    assert "Title is locked" in by_cat["VALIDATION_ERROR"].message
    assert hs.record("contacts", 2002)["jobtitle"] == "Engineer"
    assert hs.record("contacts", 2001)["jobtitle"] == "Changed"


def test_batch_create_rejects_whole_batch_on_invalid_email(hs, hs_client):
    batch = hs_client.crm.contacts.batch_api
    with pytest.raises(Exception) as e:
        batch.create(batch_input_simple_public_object_batch_input_for_create={"inputs": [
            {"properties": {"email": "ok@acme.com"}}, {"properties": {"email": "not-an-email"}}]})
    assert e.value.status == 400
    body = _body(e.value)
    assert body["category"] == "VALIDATION_ERROR" and "INVALID_EMAIL" in body["message"]
    assert not any(r["properties"].get("email") == "ok@acme.com" for r in hs.records("contacts"))


def test_batch_create_201_and_duplicate_email_is_409_conflict(hs, hs_client):
    batch = hs_client.crm.contacts.batch_api
    res = batch.create(batch_input_simple_public_object_batch_input_for_create={"inputs": [
        {"properties": {"email": "a1@acme.com"}, "objectWriteTraceId": "t1"}]})
    assert res.status == "COMPLETE" and res.results[0].properties["email"] == "a1@acme.com"
    with pytest.raises(Exception) as e:
        batch.create(batch_input_simple_public_object_batch_input_for_create={"inputs": [
            {"properties": {"email": "fresh@acme.com"}}, {"properties": {"email": "C2001@initech.com"}}]})
    assert e.value.status == 409
    assert _body(e.value)["category"] == "CONFLICT"
    assert "Existing ID: 2001" in _body(e.value)["message"]


def test_w3_reject_write_whole_batch_mode_fails_create_with_400(hs, hs_client):
    hs.faults.add(kind="reject_write", match={"object": "tasks", "hs_task_subject": "bad*"},
                  code="INVALID_OPTION", message="no")
    with pytest.raises(Exception) as e:
        hs_client.crm.objects.tasks.batch_api.create(
            batch_input_simple_public_object_batch_input_for_create={"inputs": [
                {"properties": {"hs_timestamp": "1767225600000", "hs_task_subject": "good"}},
                {"properties": {"hs_timestamp": "1767225600000", "hs_task_subject": "bad one"}}]})
    assert e.value.status == 400 and _body(e.value)["category"] == "VALIDATION_ERROR"
    assert len(hs.records("tasks")) == 1


def test_writing_an_unknown_property_is_400_property_doesnt_exist(hs, hs_client):
    with pytest.raises(Exception) as e:
        hs_client.crm.companies.basic_api.update("1001", simple_public_object_input={
            "properties": {"crmsync_coverage_score": "70"}})
    assert e.value.status == 400
    assert "PROPERTY_DOESNT_EXIST" in _body(e.value)["message"]


def test_batch_read_answers_207_for_unknown_ids(hs, hs_client):
    res = hs_client.crm.contacts.batch_api.read(batch_read_input_simple_public_object_id={
        "properties": ["email"], "propertiesWithHistory": [],
        "inputs": [{"id": "2001"}, {"id": "424242"}]})
    assert _ids(res) == ["2001"]
    assert res.errors[0].category == "OBJECT_NOT_FOUND" and res.errors[0].context == {"ids": ["424242"]}


def test_batch_upsert_by_email_creates_and_updates(hs, hs_client):
    res = hs_client.crm.contacts.batch_api.upsert(batch_input_simple_public_object_batch_input_upsert={
        "inputs": [{"idProperty": "email", "id": "c2001@initech.com", "properties": {"jobtitle": "COO"}},
                   {"idProperty": "email", "id": "brand@new.com", "properties": {"firstname": "B"}}]})
    new = {r.properties.get("email") or r.id: r.new for r in res.results}
    assert new["2001"] is False or new.get("c2001@initech.com") is False
    assert any(r.new for r in res.results)
    assert hs.record("contacts", 2001)["jobtitle"] == "COO"


def test_tasks_create_with_inline_associations(hs, hs_client):
    task = hs_client.crm.objects.tasks.basic_api.create(simple_public_object_input_for_create={
        "properties": {"hs_timestamp": "2026-02-01T09:00:00Z", "hs_task_subject": "Re-engage",
                       "hs_task_priority": "HIGH", "hubspot_owner_id": "101"},
        "associations": [
            {"to": {"id": "2121"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}]},
            {"to": {"id": "1001"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 192}]}]})
    rec = hs_client.crm.objects.tasks.basic_api.get_by_id(task.id, associations=["contacts", "companies"])
    assert rec.associations["contacts"].results[0].id == "2121"
    assert rec.associations["companies"].results[0].id == "1001"
    with pytest.raises(Exception) as e:  # hs_timestamp is required
        hs_client.crm.objects.tasks.basic_api.create(simple_public_object_input_for_create={
            "properties": {"hs_task_subject": "no due date"}})
    assert e.value.status == 400


def test_invalid_owner_and_option_values_are_rejected(hs, hs_client):
    with pytest.raises(Exception) as e:
        hs_client.crm.objects.tasks.basic_api.create(simple_public_object_input_for_create={
            "properties": {"hs_timestamp": "1767225600000", "hubspot_owner_id": "777",
                           "hs_task_priority": "URGENT"}})
    msg = _body(e.value)["message"]
    assert "INVALID_OWNER_ID" in msg and "INVALID_OPTION" in msg


# ------------------------------------------------------------------ search


def test_search_operators_sorts_and_total(hs, hs_client):
    def total(*filters, **kw):
        return _search(hs_client, filterGroups=[{"filters": list(filters)}], **kw).total

    assert total({"propertyName": "jobtitle", "operator": "EQ", "value": "cfo"}) == 25
    assert total({"propertyName": "jobtitle", "operator": "IN", "values": ["CFO", "Former VP Sales"]}) == 30
    assert total({"propertyName": "jobtitle", "operator": "NOT_IN", "values": ["Engineer"]}) == 30
    assert total({"propertyName": "hs_email_hard_bounce_reason_enum", "operator": "HAS_PROPERTY"}) == 10
    assert total({"propertyName": "hs_email_hard_bounce_reason_enum", "operator": "NOT_HAS_PROPERTY"}) == 240
    assert total({"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "*@initech.com"}) == 120
    assert total({"propertyName": "jobtitle", "operator": "CONTAINS_TOKEN", "value": "former"}) == 5
    assert total({"propertyName": "hs_buying_role", "operator": "EQ", "value": "DECISION_MAKER"}) == 1
    assert total({"propertyName": "hs_object_id", "operator": "BETWEEN", "value": "2001",
                  "highValue": "2010"}) == 10
    assert total({"propertyName": "hs_object_id", "operator": "NEQ", "value": "2001"}) == 249
    # datetimes as ISO and as epoch ms select the same window
    iso_n = total({"propertyName": "lastmodifieddate", "operator": "GTE", "value": "2025-12-01T01:00:00Z"})
    ms_n = total({"propertyName": "lastmodifieddate", "operator": "GTE", "value": "1764550800000"})
    assert iso_n == ms_n == 190
    assert total({"propertyName": "lastmodifieddate", "operator": "GT", "value": "1764550800000"}) == 189
    desc = _search(hs_client, sorts=["-createdate"], limit=3)
    assert _ids(desc) == ["2250", "2249", "2248"]
    obj_sort = _search(hs_client, sorts=[{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}],
                       limit=2, properties=["email"])
    assert _ids(obj_sort) == ["2250", "2249"] and "email" in obj_sort.results[0].properties
    groups = _search(hs_client, filterGroups=[
        {"filters": [{"propertyName": "hs_object_id", "operator": "EQ", "value": "2001"}]},
        {"filters": [{"propertyName": "hs_object_id", "operator": "EQ", "value": "2002"}]}])
    assert _ids(groups) == ["2001", "2002"]


def test_search_free_text_query_and_archived_not_matching(hs, hs_client):
    assert _ids(_search(hs_client, query="first2002")) == ["2002"]
    hs.archive("contacts", "2002")
    assert _search(hs_client, query="first2002").total == 0


def test_search_pages_by_numeric_offset(hs, hs_client):
    after, seen = None, []
    while True:
        page = _search(hs_client, limit=200, after=after,
                       sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}])
        assert page.total == 250
        seen += _ids(page)
        if not page.paging:
            break
        after = page.paging.next.after
    assert after == "200" and len(seen) == 250 == len(set(seen))


def test_search_limit_over_200_is_400(hs, hs_client):
    with pytest.raises(Exception) as e:
        _search(hs_client, limit=201)
    assert e.value.status == 400


@pytest.fixture(scope="module")
def hs_big():
    """10,500 contacts; company 1 has 600 of them (association paging at 500)."""
    contacts = [{"id": str(100 + n), "properties": {"email": f"p{n}@big.com",
                 "lastmodifieddate": f"2025-06-01T00:00:{n % 60:02d}.000Z"},
                 "associations": {"companies": [{"id": "1", "label": "primary"}]} if n < 600 else {}}
                for n in range(10_500)]
    ds = {"companies": [{"id": "1", "properties": {"name": "Big"}}], "contacts": contacts}
    with HubSpotSandbox(dataset=ds) as hs:
        yield hs


def test_p1_search_within_10000_works_and_past_it_is_400(hs_big):
    client = HubSpot(access_token=TOKEN, host=hs_big.url, retry=Retry(0))
    search = client.crm.contacts.search_api
    body = {"sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}], "limit": 200}
    last = search.do_search(public_object_search_request={**body, "after": "9800"})
    assert last.total == 10_500 and len(last.results) == 200
    assert last.paging.next.after == "10000"
    with pytest.raises(Exception) as e:
        search.do_search(public_object_search_request={**body, "after": last.paging.next.after})
    assert e.value.status == 400 and _body(e.value)["category"] == "VALIDATION_ERROR"
    # windowing by hs_object_id walks past the cap
    rest = search.do_search(public_object_search_request={**body, "filterGroups": [{"filters": [
        {"propertyName": "hs_object_id", "operator": "GT", "value": last.results[-1].id}]}]})
    assert rest.total == 500


def test_association_batch_read_pages_at_500_per_input(hs_big):
    client = HubSpot(access_token=TOKEN, host=hs_big.url, retry=Retry(0))
    batch = client.crm.associations.v4.batch_api
    first = batch.get_page("companies", "contacts",
                           batch_input_public_fetch_associations_batch_request={"inputs": [{"id": "1"}]})
    assert len(first.results[0].to) == 500
    after = first.results[0].paging.next.after
    second = batch.get_page("companies", "contacts", batch_input_public_fetch_associations_batch_request={
        "inputs": [{"id": "1", "after": after}]})
    assert len(second.results[0].to) == 100 and second.results[0].paging is None


def test_d3_archived_records_leave_search_keep_modified_and_list_with_archived_true(hs, hs_client):
    before = hs.record("contacts", 2005)["lastmodifieddate"]
    hs_client.crm.contacts.basic_api.archive("2005")
    hit = _search(hs_client, filterGroups=[{"filters": [
        {"propertyName": "hs_object_id", "operator": "EQ", "value": "2005"}]}])
    assert hit.total == 0
    page = hs_client.crm.contacts.basic_api.get_page(archived=True, properties=["lastmodifieddate"])
    assert _ids(page) == ["2005"]
    gone = page.results[0]
    assert gone.archived is True and gone.archived_at is not None
    assert gone.properties["lastmodifieddate"] == before
    with pytest.raises(NotFoundException):
        hs_client.crm.contacts.basic_api.get_by_id("2005")


def test_d4_merge_gives_a_new_id_and_old_ids_resolve_to_it(hs, hs_client):
    merged = hs_client.crm.contacts.basic_api.merge(public_merge_input={
        "primaryObjectId": "2121", "objectIdToMerge": "2123"})
    assert merged.id not in ("2121", "2123")
    rec = hs_client.crm.contacts.basic_api.get_by_id("2123", properties=["hs_merged_object_ids"])
    assert rec.id == merged.id
    assert set(rec.properties["hs_merged_object_ids"].split(";")) == {"2121", "2123"}
    deal = hs_client.crm.associations.v4.basic_api.get_page("deals", "3001", "contacts")
    labels = {r.to_object_id: [t.label for t in r.association_types] for r in deal.results}
    assert labels == {merged.id: [None, "Champion"]}


def test_p6_index_lag_hides_young_records_from_search(hs, hs_client, hs_clock):
    hs.set_faults({"rules": [{"kind": "index_lag", "seconds": 30}]})
    made = hs_client.crm.contacts.basic_api.create(simple_public_object_input_for_create={
        "properties": {"email": "lag@acme.com"}})
    body = {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ",
                                           "value": "lag@acme.com"}]}]}
    assert _search(hs_client, **body).total == 0
    hs_clock.advance(31)
    assert _ids(_search(hs_client, **body)) == [made.id]


def test_p2_underfilled_pages_still_deliver_every_record(hs, hs_client):
    hs.set_faults({"rules": [{"kind": "underfilled_pages", "route": "search", "size": 37}]})
    after, seen = None, []
    while True:
        page = _search(hs_client, limit=100, after=after)
        seen += _ids(page)
        if not page.paging:
            break
        assert len(page.results) == 37
        after = page.paging.next.after
    assert len(seen) == 250 == len(set(seen))


def test_p3_p10_mutate_fault_changes_data_while_paging(hs, hs_client):
    hs.set_faults({"rules": [
        {"kind": "mutate", "route": "list", "nth": 2, "object": "contacts", "id": "2150",
         "properties": {"jobtitle": "Moved"}},
        {"kind": "mutate", "route": "list", "nth": 2, "object": "contacts", "id": "2001",
         "action": "archive"}]})
    basic = hs_client.crm.contacts.basic_api
    first = basic.get_page(limit=100)
    second = basic.get_page(limit=100, after=first.paging.next.after, properties=["jobtitle"])
    assert second.results[49].id == "2150" and second.results[49].properties["jobtitle"] == "Moved"
    assert hs.records("contacts", archived=True)[0]["id"] == "2001"


# ------------------------------------------------------------------ associations v4


def test_associations_batch_read_returns_labels_and_207_for_none(hs, hs_client):
    res = hs_client.crm.associations.v4.batch_api.get_page("deals", "contacts",
        batch_input_public_fetch_associations_batch_request={"inputs": [{"id": "3001"}, {"id": "3002"}]})
    to = {t.to_object_id: sorted((s.category, s.type_id, s.label) for s in t.association_types)
          for t in res.results[0].to}
    champion_id = hs_client.crm.associations.v4.schema.definitions_api.get_all("deals", "contacts")
    user = [r for r in champion_id.results if r.category == "USER_DEFINED"][0]
    assert to == {"2121": [("HUBSPOT_DEFINED", 3, None), ("USER_DEFINED", user.type_id, "Champion")],
                  "2123": [("HUBSPOT_DEFINED", 3, None)]}
    assert res.errors[0].context == {"fromObjectId": ["3002"]}
    contact = hs_client.crm.associations.v4.batch_api.get_page("contacts", "companies",
        batch_input_public_fetch_associations_batch_request={"inputs": [{"id": "2121"}]})
    assert sorted(t.type_id for t in contact.results[0].to[0].association_types) == [1, 279]


def test_associations_batch_create_with_labels_201_and_207(hs, hs_client):
    schema = hs_client.crm.associations.v4.schema.definitions_api
    made = schema.create("deals", "contacts", public_association_definition_create_request={
        "label": "Executive Sponsor", "name": "executive_sponsor"})
    type_id = made.results[0].type_id
    res = hs_client.crm.associations.v4.batch_api.create("deals", "contacts",
        batch_input_public_association_multi_post={"inputs": [
            {"from": {"id": "3001"}, "to": {"id": "2130"},
             "types": [{"associationCategory": "USER_DEFINED", "associationTypeId": type_id}]}]})
    assert res.results[0].labels == ["Executive Sponsor"]
    partial = hs_client.crm.associations.v4.batch_api.create("deals", "contacts",
        batch_input_public_association_multi_post={"inputs": [
            {"from": {"id": "3001"}, "to": {"id": "2131"},
             "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]},
            {"from": {"id": "3001"}, "to": {"id": "999999"},
             "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]}]})
    assert partial.num_errors == 1 and len(partial.results) == 1
    labels = {(a["id"], a["label"]) for a in next(
        r for r in hs.records("deals") if r["id"] == "3001")["associations"]["contacts"]}
    assert {("2130", "Executive Sponsor"), ("2131", None)} <= labels


def test_single_pair_create_default_and_archive(hs, hs_client):
    basic = hs_client.crm.associations.v4.basic_api
    made = basic.create("tasks", "4001", "deals", "3001", association_spec=[
        {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 216}])
    assert made.labels == [] and made.from_object_type_id == "0-27"
    default = basic.create_default("contacts", "2200", "companies", "1002")
    assert default.results[0].association_spec.association_type_id == 279
    assert [r.to_object_id for r in basic.get_page("deals", "3001", "tasks").results] == ["4001"]
    basic.archive("tasks", "4001", "deals", "3001")
    assert basic.get_page("deals", "3001", "tasks").results == []


# ------------------------------------------------------------------ properties and owners


def test_properties_create_201_duplicate_409_and_groups(hs, hs_client):
    groups = hs_client.crm.properties.groups_api
    g = groups.create("companies", property_group_create={"name": "crmsync", "label": "crmsync",
                                                          "displayOrder": -1})
    assert (g.name, g.archived) == ("crmsync", False)
    core = hs_client.crm.properties.core_api
    spec = {"name": "crmsync_coverage_score", "label": "Coverage score", "type": "number",
            "fieldType": "number", "groupName": "crmsync", "description": "0-100", "options": []}
    p = core.create("companies", property_create=spec)
    assert (p.name, p.type, p.group_name, p.hubspot_defined) == ("crmsync_coverage_score", "number",
                                                                 "crmsync", False)
    with pytest.raises(Exception) as e:
        core.create("companies", property_create=spec)
    assert e.value.status == 409
    with pytest.raises(Exception) as e:
        groups.create("companies", property_group_create={"name": "crmsync", "label": "x"})
    assert e.value.status == 409
    hs_client.crm.companies.basic_api.update("1001", simple_public_object_input={
        "properties": {"crmsync_coverage_score": "72"}})
    assert hs.record("companies", 1001)["crmsync_coverage_score"] == "72"
    names = {p.name for p in core.get_all("companies").results}
    assert {"crmsync_coverage_score", "hs_ideal_customer_profile", "name", "domain"} <= names


def test_x6_removed_property_leaves_schema_but_values_stay_on_records(hs, hs_client):
    hs.remove_property("companies", "crm_region")
    with api_error(404):
        hs_client.crm.properties.core_api.get_by_name("companies", "crm_region")
    rec = hs_client.crm.companies.basic_api.get_by_id("1001", properties=["crm_region"])
    assert rec.properties["crm_region"] == "EMEA"


def test_owners_get_page_trailing_slash_and_by_id(hs, hs_client):
    owners = hs_client.crm.owners.owners_api
    page = owners.get_page(limit=1)
    assert _ids(page) == ["101"] and page.paging.next.after
    nxt = owners.get_page(limit=1, after=page.paging.next.after)
    assert _ids(nxt) == ["102"] and nxt.paging is None
    assert _ids(owners.get_page(archived=True)) == ["103"]
    assert owners.get_by_id("9002", id_property="userId").email == "bo@sandbox.test"


# ------------------------------------------------------------------ auth


def test_wrong_token_is_401_invalid_authentication(hs):
    client = HubSpot(access_token="nope", host=hs.url, retry=Retry(0))
    with pytest.raises(UnauthorizedException) as e:
        client.crm.contacts.basic_api.get_page()
    body = _body(e.value)
    assert e.value.status == 401 and body["category"] == "INVALID_AUTHENTICATION"
    assert body["status"] == "error" and len(body["correlationId"]) == 36


def _oauth_client(hs) -> tuple[HubSpot, str]:
    tok = HubSpot(host=hs.url, retry=Retry(0)).oauth.tokens_api.create(
        grant_type="refresh_token", client_id="sandbox-client-id",
        client_secret="sandbox-client-secret", refresh_token="sandbox-refresh-token")
    assert tok.expires_in > 0
    return HubSpot(access_token=tok.access_token, host=hs.url, retry=Retry(0)), tok.refresh_token


def test_a1_access_token_expires_after_n_calls_with_expired_authentication(hs):
    hs.set_faults({"rules": [{"kind": "expire_token", "nth": 3}]})
    client, _ = _oauth_client(hs)
    basic = client.crm.contacts.basic_api
    basic.get_page()
    basic.get_page()
    with pytest.raises(UnauthorizedException) as e:
        basic.get_page()
    assert _body(e.value)["category"] == "EXPIRED_AUTHENTICATION"
    with pytest.raises(UnauthorizedException):
        basic.get_page()  # stays expired
    fresh, _ = _oauth_client(hs)
    assert fresh.crm.contacts.basic_api.get_page().results
    assert hs.requests.count("oauth_token") == 2


def test_a1_expire_token_calls_n_expires_each_access_token_after_n_calls(hs):
    hs.set_faults("expire_token:calls=2")
    client, _ = _oauth_client(hs)
    client.crm.contacts.basic_api.get_page(limit=1)
    with pytest.raises(UnauthorizedException):
        client.crm.contacts.basic_api.get_page(limit=1)
    fresh, _ = _oauth_client(hs)
    fresh.crm.contacts.basic_api.get_page(limit=1)
    with pytest.raises(UnauthorizedException):
        fresh.crm.contacts.basic_api.get_page(limit=1)


def test_a1_access_token_expires_with_the_clock(hs, hs_clock):
    client, _ = _oauth_client(hs)
    hs_clock.advance(1801)
    with pytest.raises(UnauthorizedException) as e:
        client.crm.contacts.basic_api.get_page()
    assert "expired 1 second(s) ago" in _body(e.value)["message"]


def test_a3_rotated_refresh_token_retires_the_old_one(hs):
    hs.set_faults({"rules": [{"kind": "rotate_refresh_token"}]})
    tokens = HubSpot(host=hs.url, retry=Retry(0)).oauth.tokens_api
    form = {"grant_type": "refresh_token", "client_id": "sandbox-client-id",
            "client_secret": "sandbox-client-secret"}
    first = tokens.create(refresh_token="sandbox-refresh-token", **form)
    assert first.refresh_token != "sandbox-refresh-token"
    assert tokens.create(refresh_token=first.refresh_token, **form).access_token
    from hubspot.oauth.exceptions import ApiException as OAuthApiException

    with pytest.raises(OAuthApiException) as e:
        tokens.create(refresh_token="sandbox-refresh-token", **form)
    assert e.value.status == 400 and json.loads(e.value.body)["status"] == "BAD_REFRESH_TOKEN"


def test_a4_revoked_grant_answers_400_invalid_grant(hs):
    hs.set_faults("revoke")
    r = requests.post(f"{hs.url}/oauth/v1/token", data={
        "grant_type": "refresh_token", "client_id": "sandbox-client-id",
        "client_secret": "sandbox-client-secret", "refresh_token": "sandbox-refresh-token"})
    assert r.status_code == 400
    assert r.json()["status"] == "BAD_REFRESH_TOKEN" and r.json()["error"] == "invalid_grant"


# ------------------------------------------------------------------ rate limits and faults


def test_r1_search_429_with_retry_after_and_hubspot_body(hs, hs_client):
    hs.set_faults({"rules": [{"kind": "rate_limit", "route": "search", "nth": 2, "retry_after": 2}]})
    _search(hs_client)
    with pytest.raises(Exception) as e:
        _search(hs_client)
    assert e.value.status == 429 and e.value.headers["Retry-After"] == "2"
    body = _body(e.value)
    assert (body["errorType"], body["policyName"]) == ("RATE_LIMIT", "TEN_SECONDLY_ROLLING")
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    _search(hs_client)
    assert hs.requests.count("search") == 3


def test_r2_429_without_retry_after_on_batch(hs, hs_client):
    hs.set_faults("rate_limit:route=batch_update,nth=1")
    with pytest.raises(Exception) as e:
        hs_client.crm.contacts.batch_api.update(batch_input_simple_public_object_batch_input={
            "inputs": [{"id": "2001", "properties": {"jobtitle": "x"}}]})
    assert e.value.status == 429 and "Retry-After" not in e.value.headers


def test_r4_enforced_ten_second_window_and_search_per_second(hs, hs_client, hs_clock):
    hs.set_rate_limits({"per_10s": 3, "search_per_second": 2})
    basic = hs_client.crm.contacts.basic_api
    for _ in range(3):
        basic.get_page(limit=1)
    with pytest.raises(Exception) as e:
        basic.get_page(limit=1)
    assert e.value.status == 429 and int(e.value.headers["Retry-After"]) == 10
    _search(hs_client)
    _search(hs_client)
    with pytest.raises(Exception) as e:
        _search(hs_client)
    assert _body(e.value)["policyName"] == "SECONDLY"
    hs_clock.advance(10)
    assert basic.get_page(limit=1).results and _search(hs_client).total


def test_r3_daily_quota_429_daily(hs, hs_client):
    hs.set_rate_limits({"daily": 1000, "daily_used": 999})
    hs_client.crm.contacts.basic_api.get_page(limit=1)
    with pytest.raises(Exception) as e:
        hs_client.crm.contacts.basic_api.get_page(limit=1)
    assert _body(e.value)["policyName"] == "DAILY"


USAGE_PATH = "/account-info/v3/api-usage/daily/private-apps"


def test_r3_daily_usage_knob_reports_usage_and_answers_the_documented_daily_429(
    hs, hs_client, hs_clock
):
    """The knob: usage and limit in the private-app headers and the account-info API, then
    HubSpot's documented DAILY body (api-facts §2) until resetsAt; the windows stay off."""
    resets = HS_EPOCH_S + 3600
    hs.set_daily_usage(used=97, limit=100, resets_at=resets)
    usage = hs_client.api_request({"method": "GET", "base_url": hs.url, "path": USAGE_PATH})
    assert usage.status_code == 200
    [day] = usage.json()["results"]
    assert (day["name"], day["usageLimit"], day["currentUsage"]) == (
        "private-apps-api-calls-daily", 100, 98,  # this call counts too
    )
    assert day["resetsAt"] == "2026-01-01T01:00:00.000Z" and day["fetchStatus"] == "SUCCESS"
    assert usage.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "2"
    page = hs_client.crm.contacts.basic_api.get_page_with_http_info(limit=1)
    assert page[2]["X-HubSpot-RateLimit-Daily"] == "100"
    assert page[2]["X-HubSpot-RateLimit-Daily-Remaining"] == "1"
    hs_client.crm.contacts.basic_api.get_page(limit=1)  # the 100th call of the day
    with pytest.raises(Exception) as e:
        hs_client.crm.contacts.basic_api.get_page(limit=1)
    body = _body(e.value)
    assert e.value.status == 429
    assert set(body) == {"status", "message", "errorType", "correlationId", "policyName",
                         "requestId"}
    assert (body["status"], body["message"], body["errorType"], body["policyName"]) == (
        "error", "You have reached your daily limit.", "RATE_LIMIT", "DAILY")
    hs_clock.advance(3600)  # midnight in the account's time zone: a new day
    assert hs_client.crm.contacts.basic_api.get_page(limit=1).results
    hs.set_daily_usage(limit=1000)
    for _ in range(150):  # the knob leaves the 10-second window (100 calls) off
        hs_client.crm.owners.owners_api.get_page(limit=1)


def test_daily_usage_knob_over_http(hs):
    r = requests.post(f"{hs.url}/_sandbox/limits", json={"used": 10, "limit": 20})
    assert r.status_code == 200 and (r.json()["currentUsage"], r.json()["usageLimit"]) == (10, 20)
    assert requests.get(f"{hs.url}/_sandbox/limits").json()["currentUsage"] == 10


def test_daily_usage_fault_sets_the_usage_before_the_fired_request(hs, hs_client):
    hs.set_faults([{"kind": "daily_usage", "route": "list", "nth": 2, "used": 99, "limit": 100}])
    basic = hs_client.crm.contacts.basic_api
    basic.get_page(limit=1)
    page = basic.get_page_with_http_info(limit=1)  # counted as the 100th
    assert page[2]["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
    with pytest.raises(Exception) as e:
        basic.get_page(limit=1)
    assert _body(e.value)["policyName"] == "DAILY"


def test_account_usage_is_for_private_apps_only(hs):
    client, _ = _oauth_client(hs)
    r = client.api_request({"method": "GET", "base_url": hs.url, "path": USAGE_PATH})
    assert r.status_code == 403


def test_rate_limit_headers_on_non_search_responses_only(hs):
    h = {"Authorization": f"Bearer {TOKEN}"}
    r = requests.get(f"{hs.url}/crm/v3/objects/contacts", headers=h)
    for name in ("Daily", "Daily-Remaining", "Max", "Remaining", "Interval-Milliseconds",
                 "Secondly", "Secondly-Remaining"):
        assert f"X-HubSpot-RateLimit-{name}" in r.headers
    assert r.headers["X-HubSpot-RateLimit-Max"] == "100"
    s = requests.post(f"{hs.url}/crm/v3/objects/contacts/search", headers=h, json={})
    assert s.status_code == 200 and "X-HubSpot-RateLimit-Max" not in s.headers


def test_oauth_calls_omit_the_daily_rate_limit_headers(hs):
    client, _ = _oauth_client(hs)
    page = client.crm.contacts.basic_api.get_page_with_http_info(limit=1)
    headers = page[2]
    assert "X-HubSpot-RateLimit-Max" in headers and "X-HubSpot-RateLimit-Daily" not in headers


def test_r7_w4_drop_connection_mid_body_and_after_applying_a_create(hs, hs_client):
    hs.set_faults({"rules": [{"kind": "drop_connection", "route": "list", "nth": 1, "bytes": 50}]})
    with pytest.raises(urllib3.exceptions.MaxRetryError):  # body cut short (ProtocolError)
        hs_client.crm.contacts.basic_api.get_page()
    assert hs_client.crm.contacts.basic_api.get_page().results
    hs.set_faults({"rules": [{"kind": "drop_connection", "route": "create", "apply": True}]})
    with pytest.raises(urllib3.exceptions.ProtocolError):  # no response at all
        hs_client.crm.objects.tasks.basic_api.create(simple_public_object_input_for_create={
            "properties": {"hs_timestamp": "1767225600000", "hs_task_subject": "once"}})
    assert [t["properties"]["hs_task_subject"] for t in hs.records("tasks")] == ["Call Acme", "once"]


def test_latency_fault_uses_the_injected_sleep():
    slept: list[float] = []
    with HubSpotSandbox(faults="latency:ms=250,route=list", sleep=slept.append) as hs:
        HubSpot(access_token=TOKEN, host=hs.url, retry=Retry(0)).crm.contacts.basic_api.get_page()
    assert slept == [0.25]


def test_r7_status_fault_503_raises_service_exception(hs, hs_client):
    hs.set_faults({"seed": 1, "rules": [{"kind": "status", "status": 503, "route": "list", "nth": 1}]})
    with pytest.raises(ServiceException) as e:
        hs_client.crm.contacts.basic_api.get_page()
    assert e.value.status == 503 and _body(e.value)["status"] == "error"
    assert hs_client.crm.contacts.basic_api.get_page().results


# ------------------------------------------------------------------ control surface


def test_sandbox_http_control_endpoints(hs, hs_client):
    hs_client.crm.contacts.basic_api.get_page()
    counts = requests.get(f"{hs.url}/_sandbox/requests").json()
    assert counts["by_route"] == {"GET list": 1} and counts["by_object"] == {"GET list:contacts": 1}
    recs = requests.get(f"{hs.url}/_sandbox/records/companies").json()["results"]
    assert [r["id"] for r in recs] == ["1001", "1002", "1003"]
    assert requests.post(f"{hs.url}/_sandbox/faults", data="status:status=500,route=get").ok
    with pytest.raises(ServiceException):
        hs_client.crm.contacts.basic_api.get_by_id("2001")
    assert requests.post(f"{hs.url}/_sandbox/reset").ok
    assert requests.get(f"{hs.url}/_sandbox/requests").json()["total"] == 0


def test_in_process_api_round_trips(hs, hs_client):
    cid = hs.create("contacts", {"email": "ip@acme.com"}, associations=[("companies", "1001", "primary")])
    hs.update("contacts", cid, {"jobtitle": "Ex-CEO"})
    hs.associate("deals", "3001", "contacts", cid, "Champion")
    rec = hs_client.crm.contacts.basic_api.get_by_id(cid, properties=["jobtitle", "associatedcompanyid"])
    assert rec.properties["jobtitle"] == "Ex-CEO" and rec.properties["associatedcompanyid"] == "1001"
    new_id = hs.merge("contacts", cid, "2130")
    assert hs.record("contacts", cid)["hs_object_id"] == new_id
    hs.archive("contacts", new_id)
    assert hs.records("contacts", archived=True)[0]["id"] == new_id
    hs.add_property("contacts", "crmsync_hygiene_status", type_="string")
    hs.update("contacts", "2001", {"crmsync_hygiene_status": "stale"})
    assert hs.record("contacts", "2001")["crmsync_hygiene_status"] == "stale"


def test_write_config_writes_hubspot_table_and_token_file(hs, tmp_path: Path):
    cfg = tmp_path / "sync.toml"
    cfg.write_text('[mirror]\npath = "crmsync.db"\n', encoding="utf-8")
    hs.write_config(cfg)
    hs.write_config(cfg)  # idempotent: one [hubspot] table
    import tomllib

    data = tomllib.loads(cfg.read_text(encoding="utf-8"))
    assert data["hubspot"] == {"enabled": True, "host": hs.url, "auth": "private_app",
                               "token_file": "hubspot-token.txt"}
    assert data["mirror"]["path"] == "crmsync.db"
    assert (tmp_path / "hubspot-token.txt").read_text().strip() == TOKEN


def test_generated_dataset_loads():
    from crmsync.sandbox.generate import generate

    ds = generate(seed=3, accounts=5)
    with HubSpotSandbox(dataset=ds) as hs:
        client = HubSpot(access_token=TOKEN, host=hs.url, retry=Retry(0))
        page = client.crm.contacts.basic_api.get_page(limit=100, associations=["companies"])
        assert len(page.results) == min(100, len(ds["hubspot"]["contacts"]))
        deals = [d["id"] for d in ds["hubspot"]["deals"]]
        res = client.crm.associations.v4.batch_api.get_page("deals", "contacts",
            batch_input_public_fetch_associations_batch_request={"inputs": [{"id": d} for d in deals]})
        assert res.results


# ------------------------------------------------------------------ issue 12: as HubSpot documents it


def _primary_put(client: HubSpot, contact: str, company: str) -> None:
    """v4: make `company` the contact's primary (type 1, "Contact to company (Primary)")."""
    client.crm.associations.v4.basic_api.create("contacts", contact, "companies", company, [
        {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}])


def test_d6_a_primary_company_change_sets_associatedcompanyid_and_moves_the_dates(hs, hs_client, hs_clock):
    before = hs_client.crm.contacts.basic_api.get_by_id("2150", properties=["lastmodifieddate"])
    hs_clock.advance(60)
    _primary_put(hs_client, "2150", "1003")
    after = hs_client.crm.contacts.basic_api.get_by_id(
        "2150", properties=["associatedcompanyid", "lastmodifieddate", "hs_lastmodifieddate"])
    assert after.properties["associatedcompanyid"] == "1003"
    assert after.properties["lastmodifieddate"] > before.properties["lastmodifieddate"]
    assert after.properties["hs_lastmodifieddate"] == after.properties["lastmodifieddate"]
    # and the incremental search by lastmodifieddate finds it
    hit = _search(hs_client, filterGroups=[{"filters": [
        {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(int(hs_clock.t * 1000) - 1000)}]}])
    assert "2150" in _ids(hit)


def test_d6_fault_association_dates_frozen_moves_the_company_but_no_date(hs, hs_client, hs_clock):
    hs.set_faults([{"kind": "association_dates_frozen"}])
    before = hs_client.crm.contacts.basic_api.get_by_id("2150", properties=["lastmodifieddate"])
    hs_clock.advance(60)
    _primary_put(hs_client, "2150", "1003")
    after = hs_client.crm.contacts.basic_api.get_by_id(
        "2150", properties=["associatedcompanyid", "lastmodifieddate"])
    assert after.properties["associatedcompanyid"] == "1003"
    assert after.properties["lastmodifieddate"] == before.properties["lastmodifieddate"]


def test_d7_a_deal_contact_label_change_moves_no_date_on_either_side(hs, hs_client, hs_clock):
    deal = hs_client.crm.deals.basic_api.get_by_id("3001", properties=["hs_lastmodifieddate"])
    contact = hs_client.crm.contacts.basic_api.get_by_id("2123", properties=["lastmodifieddate"])
    labels = hs_client.crm.associations.v4.schema.definitions_api.get_all("deals", "contacts")
    champion = next(t.type_id for t in labels.results if t.label == "Champion")
    hs_clock.advance(60)
    hs_client.crm.associations.v4.basic_api.create("deals", "3001", "contacts", "2123", [
        {"associationCategory": "USER_DEFINED", "associationTypeId": champion}])
    assert hs_client.crm.deals.basic_api.get_by_id(
        "3001", properties=["hs_lastmodifieddate"]).properties == deal.properties
    assert hs_client.crm.contacts.basic_api.get_by_id(
        "2123", properties=["lastmodifieddate"]).properties == contact.properties


def test_d3_purge_deletes_for_good_from_both_listings(hs, hs_client):
    hs.purge("contacts", "2005")  # live -> gone
    hs_client.crm.contacts.basic_api.archive("2006")
    hs.purge("contacts", "2006")  # archived -> gone
    hs_client.crm.contacts.basic_api.purge(public_gdpr_delete_input={"objectId": "2007"})  # GDPR delete
    live = hs_client.crm.contacts.basic_api.get_page(limit=100, properties=["hs_object_id"])
    archived = hs_client.crm.contacts.basic_api.get_page(limit=100, archived=True)
    gone = {"2005", "2006", "2007"}
    assert not gone & set(_ids(live)) and not gone & set(_ids(archived))
    with pytest.raises(NotFoundException):
        hs_client.crm.contacts.basic_api.get_by_id("2005")
    initech = next(c for c in hs.records("companies") if c["id"] == "1003")
    linked = {a["id"] for a in initech["associations"]["contacts"]}
    assert "2008" in linked and not gone & linked  # its associations went with it


def test_d3_archived_records_are_listed_for_90_days_only(hs, hs_client, hs_clock):
    hs_client.crm.contacts.basic_api.archive("2005")
    hs_clock.advance(90 * 86_400 - 60)
    assert _ids(hs_client.crm.contacts.basic_api.get_page(archived=True)) == ["2005"]
    hs_clock.advance(120)
    assert _ids(hs_client.crm.contacts.basic_api.get_page(archived=True)) == []


def test_x8_bounce_reason_and_buying_role_are_hubspots_enumerations(hs, hs_client):
    bounce = hs_client.crm.properties.core_api.get_by_name("contacts", "hs_email_hard_bounce_reason_enum")
    assert (bounce.type, bounce.field_type) == ("enumeration", "radio")
    assert [(o.value, o.label) for o in bounce.options] == [
        ("CONTENT", "Content"), ("MAILBOX_FULL", "Mailbox full"), ("OTHER", "Other"),
        ("POLICY", "Policy"), ("SPAM", "Spam"), ("UNKNOWN_USER", "Unknown user")]
    role = hs_client.crm.properties.core_api.get_by_name("contacts", "hs_buying_role")
    assert (role.type, role.field_type) == ("enumeration", "checkbox")
    assert [o.value for o in role.options] == [
        "BLOCKER", "BUDGET_HOLDER", "CHAMPION", "DECISION_MAKER", "END_USER",
        "EXECUTIVE_SPONSOR", "INFLUENCER", "LEGAL_AND_COMPLIANCE", "OTHER"]
    assert role.options[7].label == "Legal & Compliance"
    hs_client.crm.contacts.basic_api.update("2001", simple_public_object_input={
        "properties": {"hs_buying_role": "BUDGET_HOLDER;LEGAL_AND_COMPLIANCE"}})
    with api_error(400) as e:
        hs_client.crm.contacts.basic_api.update("2001", simple_public_object_input={
            "properties": {"hs_buying_role": "BUDGET_HOLDER;KINGMAKER"}})
    assert "KINGMAKER was not one of the allowed options" in _body(e.value)["message"]
    assert hs.record("contacts", "2001")["hs_buying_role"] == "BUDGET_HOLDER;LEGAL_AND_COMPLIANCE"
