"""Compound address fields in the Salesforce emulator (compound.py): what Singer's
tap-salesforce and Airbyte's source-salesforce read from describe and SOQL."""

from __future__ import annotations

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest


def test_describe_marks_the_compound_field_and_its_components(sf_client):
    fields = {f["name"]: f for f in sf_client.Account.describe()["fields"]}
    assert fields["BillingAddress"]["type"] == "address"
    assert not fields["BillingAddress"]["createable"] and not fields["BillingAddress"]["filterable"]
    assert fields["BillingCity"]["compoundFieldName"] == "BillingAddress"
    assert fields["Name"]["compoundFieldName"] is None
    assert {f["name"]: f["type"] for f in sf_client.Contact.describe()["fields"]}["MailingAddress"] == "address"
    assert "Address" in {f["name"] for f in sf_client.User.describe()["fields"]}


def test_soql_answers_the_compound_as_an_object_of_its_components(sf, sf_client):
    acc = sf.records("Account")[0]
    sf.update("Account", acc["Id"], {"BillingCity": "Lyon", "BillingCountry": "France"})
    rec = sf_client.query(f"SELECT Id, Name, BillingAddress FROM Account WHERE Id = '{acc['Id']}'")[
        "records"][0]
    assert rec["BillingAddress"]["city"] == "Lyon" and rec["BillingAddress"]["country"] == "France"
    assert rec["BillingAddress"]["street"] is None and "postalCode" in rec["BillingAddress"]
    sf.update("Account", acc["Id"], {"BillingCity": None, "BillingCountry": None})
    rec = sf_client.query(f"SELECT BillingAddress FROM Account WHERE Id = '{acc['Id']}'")["records"][0]
    assert rec["BillingAddress"] is None  # no component set: null


def test_compound_fields_are_not_writable(sf, sf_client):
    acc = sf.records("Account")[0]
    with pytest.raises(SalesforceMalformedRequest):
        sf_client.Account.update(acc["Id"], {"BillingAddress": {"city": "Lyon"}})


def test_bulk_query_refuses_compound_data(sf, sf_session):
    url = f"{sf.url}/services/data/v59.0/jobs/query"
    token = sf.new_session()
    r = sf_session.post(url, json={"operation": "query", "query": "SELECT Id, BillingAddress FROM Account"},
                        headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 400
    assert r.json()[0] == {"errorCode": "INVALID_FIELD",
                           "message": "Selecting compound data not supported in Bulk Query"}
