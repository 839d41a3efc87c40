"""Reads other open-source connectors make of the HubSpot emulator (api_peers.py, bench/peers.py):
custom object schemas, the legacy properties API, top-level search `filters`, and v4
association batch reads between types the sandbox does not associate."""

from __future__ import annotations

import requests

from tests.sandbox.conftest import HS_TOKEN

AUTH = {"Authorization": f"Bearer {HS_TOKEN}"}


def test_custom_object_schemas_are_an_empty_list(hs):
    for path in ("/crm/v3/schemas", "/crm-object-schemas/v3/schemas"):
        r = requests.get(hs.url + path, headers=AUTH, timeout=10)
        assert r.status_code == 200 and r.json() == {"results": []}
    assert hs.requests.count("schemas") == 2


def test_legacy_properties_are_the_v3_definitions_as_an_array(hs):
    v3 = requests.get(hs.url + "/crm/v3/properties/companies", headers=AUTH, timeout=10).json()
    for path in ("/properties/v2/companies/properties", "/properties/v2/company/properties",
                 "/properties/v1/companies/properties"):
        legacy = requests.get(hs.url + path, headers=AUTH, timeout=10).json()
        assert isinstance(legacy, list)
        assert {p["name"] for p in legacy} == {p["name"] for p in v3["results"]}
        name = next(p for p in legacy if p["name"] == "name")
        assert name["type"] == "string" and "readOnlyValue" in name and "archived" not in name
    other = requests.get(hs.url + "/properties/v2/line_items/properties", headers=AUTH, timeout=10)
    assert {p["name"] for p in other.json()} == {"hs_object_id", "hs_createdate",
                                                 "hs_lastmodifieddate"}


def test_top_level_filters_are_one_and_group(hs):
    url = hs.url + "/crm/v3/objects/contacts/search"
    flt = [{"propertyName": "hs_object_id", "operator": "GTE", "value": "2010"},
           {"propertyName": "hs_object_id", "operator": "LTE", "value": "2014"}]
    top = requests.post(url, json={"filters": flt, "limit": 100}, headers=AUTH, timeout=10).json()
    grouped = requests.post(url, json={"filterGroups": [{"filters": flt}], "limit": 100},
                            headers=AUTH, timeout=10).json()
    assert top["total"] == grouped["total"] == 5
    assert [r["id"] for r in top["results"]] == [r["id"] for r in grouped["results"]]


def test_batch_read_between_unassociated_types_finds_none(hs):
    for a, b in (("deal", "line_items"), ("contacts", "contacts"), ("deals", "tickets")):
        r = requests.post(hs.url + f"/crm/v4/associations/{a}/{b}/batch/read",
                          json={"inputs": [{"id": "1"}, {"id": "2"}]}, headers=AUTH, timeout=10)
        assert r.status_code == 207
        body = r.json()
        assert body["results"] == [] and body["numErrors"] == 2
        assert {e["subCategory"] for e in body["errors"]} == {
            "crm.associations.NO_ASSOCIATIONS_FOUND"}
    bad = requests.post(hs.url + "/crm/v4/associations/deals/nonsense/batch/read",
                        json={"inputs": [{"id": "1"}]}, headers=AUTH, timeout=10)
    assert bad.status_code == 400


def test_date_versioned_oauth_token_path_refreshes_like_v1(hs):
    from crmsync.sandbox.hubspot import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN

    form = {"grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "refresh_token": REFRESH_TOKEN, "redirect_uri": "https://localhost/callback"}
    r = requests.post(hs.url + "/oauth/2026-03/token", data=form, timeout=10)
    assert r.status_code == 200 and r.json()["access_token"]
    got = requests.get(hs.url + "/crm/v3/objects/contacts?limit=1", timeout=10,
                       headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    assert got.status_code == 200
