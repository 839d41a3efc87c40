"""The HubSpot emulator's property history and workflow_revert fault, through hubspot-api-client.

Shapes and caps per api-facts §1: entries newest first, `sourceType` / `sourceId`
/ `updatedByUserId`; at most 50 records per read with history.
"""

from __future__ import annotations

import json

import pytest

from crmsync.sandbox.hubspot.history import OTHER_APP_ID, PRIVATE_APP_ID


def _history(rec, name):
    return [e.to_dict() for e in rec.properties_with_history[name]]


def test_api_writes_read_as_the_private_app_and_ui_edits_as_the_user_newest_first(hs, hs_client, hs_clock):
    basic = hs_client.crm.contacts.basic_api
    basic.update("2003", simple_public_object_input={"properties": {"jobtitle": "CTO"}})
    hs_clock.advance(60)
    hs.update("contacts", "2003", {"jobtitle": "VP Engineering"})  # a person, in the UI
    hs_clock.advance(60)
    hs.update("contacts", "2003", {"jobtitle": "Head of Platform"}, source="workflow")
    rec = basic.get_by_id("2003", properties=["jobtitle"], properties_with_history=["jobtitle"])
    entries = _history(rec, "jobtitle")
    assert [e["value"] for e in entries] == ["Head of Platform", "VP Engineering", "CTO", "Engineer"]
    assert [e["source_type"] for e in entries] == ["AUTOMATION_PLATFORM", "CRM_UI", "INTEGRATION", "IMPORT"]
    assert entries[2]["source_id"] == PRIVATE_APP_ID and entries[2]["updated_by_user_id"] is None
    # the first active owner's user plays the person unless told otherwise
    assert entries[1]["source_id"] == "userId:9001" and entries[1]["updated_by_user_id"] == 9001
    assert entries[0]["timestamp"] > entries[1]["timestamp"] > entries[2]["timestamp"]


def test_an_unchanged_value_adds_no_history_entry(hs, hs_client):
    hs.update("contacts", "2003", {"jobtitle": "Engineer"}, source="integration")
    assert [e["sourceType"] for e in hs.history("contacts", "2003", "jobtitle")] == ["IMPORT"]
    hs.update("contacts", "2003", {"jobtitle": "Staff Engineer"}, source="integration")
    latest = hs.history("contacts", "2003", "jobtitle")[0]
    assert (latest["sourceType"], latest["sourceId"]) == ("INTEGRATION", OTHER_APP_ID)


def test_list_with_history_over_50_is_400_and_50_is_served(hs, hs_client):
    from hubspot.crm.contacts.exceptions import ApiException

    basic = hs_client.crm.contacts.basic_api
    page = basic.get_page(limit=50, properties_with_history=["jobtitle"])
    assert len(page.results) == 50 and all(r.properties_with_history for r in page.results)
    with pytest.raises(ApiException) as e:
        basic.get_page(limit=51, properties_with_history=["jobtitle"])
    assert e.value.status == 400
    assert json.loads(e.value.body)["category"] == "VALIDATION_ERROR"
    assert len(basic.get_page(limit=100).results) == 100  # without history: 100


def test_batch_read_with_history_over_50_inputs_is_400(hs, hs_client):
    from hubspot.crm.contacts.exceptions import ApiException

    batch = hs_client.crm.contacts.batch_api
    ids = [str(i) for i in range(2001, 2052)]
    body = {"inputs": [{"id": i} for i in ids[:50]], "properties": ["jobtitle"],
            "propertiesWithHistory": ["jobtitle"]}
    assert len(batch.read(batch_read_input_simple_public_object_id=body).results) == 50
    with pytest.raises(ApiException) as e:
        batch.read(batch_read_input_simple_public_object_id={**body, "inputs": [{"id": i} for i in ids]})
    assert e.value.status == 400
    plain = {"inputs": [{"id": i} for i in ids], "properties": ["jobtitle"]}
    assert len(batch.read(batch_read_input_simple_public_object_id=plain).results) == 51


def test_workflow_revert_rewrites_after_the_api_write_and_history_says_workflow(hs, hs_client):
    hs.faults.add(kind="workflow_revert", match={"object": "contacts", "id": "2002"},
                  set={"jobtitle": "Engineer"})
    res = hs_client.crm.contacts.batch_api.update(batch_input_simple_public_object_batch_input={
        "inputs": [{"id": i, "properties": {"jobtitle": "Architect"}} for i in ("2001", "2002")]})
    # the answer shows the write; the workflow ran after it
    assert {r.id: r.properties["jobtitle"] for r in res.results} == {"2001": "Architect", "2002": "Architect"}
    assert hs.record("contacts", 2002)["jobtitle"] == "Engineer"
    assert hs.record("contacts", 2001)["jobtitle"] == "Architect"
    latest, before = hs.history("contacts", "2002", "jobtitle")[:2]
    assert latest["sourceType"] == "AUTOMATION_PLATFORM" and latest["value"] == "Engineer"
    assert (before["sourceType"], before["sourceId"]) == ("INTEGRATION", PRIVATE_APP_ID)
