"""Real emulator responses checked against the hubspot-api-client 12.0.0 contract.

tests/sandbox/contract/hubspot-api-client-12.0.0-contract.json (Apache-2.0, with
its licence and provenance beside it) lists, per
client method, the HTTP call and the status -> response model map, and per
model its JSON field names, types, required flags and enums. For each method
the emulator serves, we send the request the client would send (raw HTTP, so
the exact status and JSON are visible), then check: the status is one the
client deserialises (or 204 for archive-style methods with no map), and the
body validates against the model: no unknown field names, required fields
present, types and enum values right. Request bodies are validated too, so
the scenarios use the wire names the client sends.

A declared "str" also accepts a JSON number: the real API sends ids such as
`toObjectId` as numbers and the client coerces them with str().
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

# Kept in the repository: a missing contract fails the suite (at collection), never skips it.
CONTRACT_PATH = Path(__file__).parent / "contract" / "hubspot-api-client-12.0.0-contract.json"
CONTRACT = json.loads(CONTRACT_PATH.read_text(encoding="utf-8"))
TOKEN = "pat-sandbox-0000"

NOT_SERVED: set[str] = set()  # methods of the contract the emulator does not serve


# ------------------------------------------------------------------ validator


def namespace(api_key: str) -> str:
    """The models namespace of a method: the longest models key prefixing it."""
    return max((ns for ns in CONTRACT["models"] if api_key.startswith(ns + ".")), key=len)


def validate(ns: str, type_: str, value: Any, path: str = "$") -> list[str]:
    """Problems with `value` as the contract's `type_` (model name or generic type)."""
    if value is None:
        return []
    if type_.startswith("list["):
        if not isinstance(value, list):
            return [f"{path}: expected list, got {type(value).__name__}"]
        inner = type_[5:-1]
        return [p for i, v in enumerate(value) for p in validate(ns, inner, v, f"{path}[{i}]")]
    if type_.startswith("dict["):
        if not isinstance(value, dict):
            return [f"{path}: expected object, got {type(value).__name__}"]
        inner = type_[5:-1].split(", ", 1)[1]
        return [p for k, v in value.items() for p in validate(ns, inner, v, f"{path}.{k}")]
    if type_ == "str":
        ok = isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
        return [] if ok else [f"{path}: expected str, got {type(value).__name__}"]
    if type_ == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected int, got {type(value).__name__}"]
    if type_ == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected number, got {type(value).__name__}"]
    if type_ == "bool":
        return [] if isinstance(value, bool) else [f"{path}: expected bool, got {type(value).__name__}"]
    if type_ == "datetime":
        try:
            datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            return []
        except ValueError:
            return [f"{path}: not an ISO datetime: {value!r}"]
    if type_ == "object":
        return []
    model = CONTRACT["models"][ns].get(type_)
    if model is None:
        return [f"{path}: unknown model {type_} in {ns}"]
    if not isinstance(value, dict):
        return [f"{path}: expected {type_} object, got {type(value).__name__}"]
    problems = [f"{path}.{k}: not a field of {type_}" for k in value if k not in model]
    for name, spec in model.items():
        if name not in value:
            if spec.get("required"):
                problems.append(f"{path}.{name}: required field of {type_} missing")
            continue
        problems += validate(ns, spec["type"], value[name], f"{path}.{name}")
        if spec.get("enum") and value[name] is not None and value[name] not in spec["enum"]:
            problems.append(f"{path}.{name}: {value[name]!r} not in {spec['enum']}")
    return problems


def check_response(api_key: str, status: int, body: Any) -> list[str]:
    api = CONTRACT["apis"][api_key]
    responses = api["responses"]
    if not responses:
        return [] if status == 204 else [f"{api_key}: expected 204, got {status}"]
    if str(status) not in responses:
        return [f"{api_key}: status {status} not in {sorted(responses)}: {str(body)[:300]}"]
    return validate(namespace(api_key), responses[str(status)], body)


def test_validator_catches_wrong_names_types_and_statuses():
    bad = {"id": "1", "properties": {}, "createdAt": "nope", "updatedAt": "2026-01-01T00:00:00Z",
           "archived": "false", "extra": 1}
    problems = validate("crm.contacts", "SimplePublicObject", bad)
    assert any("createdAt" in p for p in problems)
    assert any("archived" in p for p in problems)
    assert any("extra" in p for p in problems)
    assert check_response("crm.contacts.basic_api.create", 200, {}) != []
    assert validate("crm.contacts", "SimplePublicObject", {"id": "1"}) != []


# ------------------------------------------------------------------ scenarios

# api key -> (setup requests, checked request); a request is (path params, query, body)
_CREATE_LABEL = ("POST /crm/v4/associations/deals/contacts/labels", {"label": "Sponsor", "name": "sponsor"})
_GROUP = ("POST /crm/v3/properties/companies/groups", {"name": "crmsync", "label": "crmsync"})
_PROP = ("POST /crm/v3/properties/companies", {"name": "crmsync_score", "label": "Score", "type": "number",
                                               "fieldType": "number", "groupName": "crmsync"})
_TYPED = {"contacts": ("crm.contacts", "contactId"), "companies": ("crm.companies", "companyId"),
          "deals": ("crm.deals", "dealId"), "tasks": ("crm.objects.tasks", "taskId")}
_IDS = {"contacts": ("2001", "2002"), "companies": ("1001", "1002"), "deals": ("3001", "3002"),
        "tasks": ("4001", "4001")}
_NEW = {"contacts": {"email": "contract@acme.com"}, "companies": {"name": "Contract Co"},
        "deals": {"dealname": "Contract deal"}, "tasks": {"hs_timestamp": "2026-02-01T00:00:00Z"}}
_UPSERT = {"contacts": ("email", "c2001@initech.com"), "companies": ("hs_object_id", "1001"),
           "deals": ("hs_object_id", "3001"), "tasks": ("hs_object_id", "4001")}


def _object_scenarios() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for obj, (prefix, id_name) in _TYPED.items():
        a, b = _IDS[obj]
        id_prop, key = _UPSERT[obj]
        variants = [(prefix, {}, id_name)]
        if obj != "tasks":
            variants.append(("crm.objects", {"objectType": obj}, "objectId"))
        for pre, extra, idn in variants:
            if pre == "crm.objects" and obj != "contacts":
                continue  # one generic-objects pass is enough
            s = {
                f"{pre}.basic_api.get_page": {"query": {"limit": "2", "properties": ["email", "name"],
                                                        "associations": ["companies", "contacts"]}},
                f"{pre}.basic_api.get_by_id": {"params": {idn: a}, "query": {
                    "associations": ["deals"], "propertiesWithHistory": ["hs_object_id", "createdate"]}},
                f"{pre}.basic_api.create": {"body": {"properties": _NEW[obj]}},
                f"{pre}.basic_api.update": {"params": {idn: a}, "body": {"properties": {"hs_lead_status": "NEW"}
                                                                          if obj == "contacts" else {}}},
                f"{pre}.basic_api.archive": {"params": {idn: b}},
                f"{pre}.batch_api.read": {"body": {"properties": [], "propertiesWithHistory": [],
                                                   "inputs": [{"id": a}, {"id": "999999"}]}},
                f"{pre}.batch_api.create": {"body": {"inputs": [{"properties": _NEW[obj]}]}},
                f"{pre}.batch_api.update": {"body": {"inputs": [{"id": a, "properties": {}},
                                                                {"id": "999999", "properties": {}}]}},
                f"{pre}.batch_api.upsert": {"body": {"inputs": [{"idProperty": id_prop, "id": key,
                                                                 "properties": {}}]}},
                f"{pre}.batch_api.archive": {"body": {"inputs": [{"id": b}]}},
                f"{pre}.search_api.do_search": {"body": {"filterGroups": [{"filters": [
                    {"propertyName": "hs_object_id", "operator": "GTE", "value": "1"}]}],
                    "sorts": ["hs_object_id"], "properties": [], "limit": 5, "after": "0"}},
            }
            if obj in ("contacts", "companies", "deals") and pre != "crm.objects":
                s[f"{pre}.basic_api.merge"] = {"body": {"primaryObjectId": a, "objectIdToMerge": b}}
            if obj == "contacts" and pre != "crm.objects":
                s[f"{pre}.basic_api.purge"] = {"body": {"objectId": b}}
            for v in s.values():
                v.setdefault("params", {}).update(extra)
            out.update(s)
    return out


V4 = "crm.associations.v4"
DC = "crm.associations.v4.schema.definition_configurations_api"
SCENARIOS: dict[str, dict[str, Any]] = {
    **_object_scenarios(),
    f"{V4}.basic_api.get_page": {"params": {"objectType": "deals", "objectId": "3001",
                                            "toObjectType": "contacts"}, "query": {"limit": "500"}},
    f"{V4}.basic_api.create": {"params": {"objectType": "deals", "objectId": "3001", "toObjectType": "contacts",
                                          "toObjectId": "2130"},
                               "body": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]},
    f"{V4}.basic_api.create_default": {"params": {"fromObjectType": "contacts", "fromObjectId": "2130",
                                                  "toObjectType": "companies", "toObjectId": "1002"}},
    f"{V4}.basic_api.archive": {"params": {"objectType": "deals", "objectId": "3001", "toObjectType": "contacts",
                                           "toObjectId": "2121"}},
    f"{V4}.batch_api.get_page": {"params": {"fromObjectType": "deals", "toObjectType": "contacts"},
                                 "body": {"inputs": [{"id": "3001"}, {"id": "3002"}]}},
    f"{V4}.batch_api.create": {"params": {"fromObjectType": "deals", "toObjectType": "contacts"},
                               "body": {"inputs": [{"from": {"id": "3001"}, "to": {"id": "2140"}, "types": [
                                   {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]},
                                   {"from": {"id": "3001"}, "to": {"id": "999999"}, "types": [
                                       {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]}]}},
    f"{V4}.batch_api.create_default": {"params": {"fromObjectType": "tasks", "toObjectType": "contacts"},
                                       "body": {"inputs": [{"from": {"id": "4001"}, "to": {"id": "2140"}}]}},
    f"{V4}.batch_api.archive": {"params": {"fromObjectType": "deals", "toObjectType": "contacts"},
                                "body": {"inputs": [{"from": {"id": "3001"}, "to": [{"id": "2123"}]}]}},
    f"{V4}.batch_api.archive_labels": {"params": {"fromObjectType": "deals", "toObjectType": "contacts"},
                                       "body": {"inputs": [{"from": {"id": "3001"}, "to": {"id": "2121"},
                                                "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                           "associationTypeId": 3}]}]}},
    f"{V4}.schema.definitions_api.get_all": {"params": {"fromObjectType": "deals", "toObjectType": "contacts"}},
    f"{V4}.schema.definitions_api.create": {"params": {"fromObjectType": "deals", "toObjectType": "contacts"},
                                            "body": {"label": "Blocker", "name": "blocker",
                                                     "inverseLabel": "Blocks"}},
    f"{V4}.schema.definitions_api.update": {"setup": [_CREATE_LABEL],
                                            "params": {"fromObjectType": "deals", "toObjectType": "contacts"},
                                            "body": {"associationTypeId": "$label", "label": "Sponsor 2"}},
    f"{V4}.schema.definitions_api.remove": {"setup": [_CREATE_LABEL],
                                            "params": {"fromObjectType": "deals", "toObjectType": "contacts",
                                                       "associationTypeId": "$label"}},
    f"{DC}.get_all": {},
    f"{DC}.get_all_between_two_object_types": {"params": {"fromObjectType": "deals",
                                                          "toObjectType": "contacts"}},
    f"{DC}.batch_create": {"params": {"fromObjectType": "deals", "toObjectType": "contacts"},
                           "body": {"inputs": [{"category": "HUBSPOT_DEFINED", "typeId": 3,
                                                "maxToObjectIds": 5}]}},
    f"{DC}.batch_update": {"params": {"fromObjectType": "deals", "toObjectType": "contacts"},
                           "body": {"inputs": [{"category": "HUBSPOT_DEFINED", "typeId": 3,
                                                "maxToObjectIds": 7}]}},
    f"{DC}.batch_remove": {"params": {"fromObjectType": "deals", "toObjectType": "contacts"},
                           "body": {"inputs": [{"category": "HUBSPOT_DEFINED", "typeId": 3}]}},
    "crm.owners.owners_api.get_page": {"query": {"limit": "1"}},
    "crm.owners.owners_api.get_by_id": {"params": {"ownerId": "101"}},
    "crm.properties.core_api.get_all": {"params": {"objectType": "contacts"}},
    "crm.properties.core_api.get_by_name": {"params": {"objectType": "contacts", "propertyName": "hs_buying_role"}},
    "crm.properties.core_api.create": {"setup": [_GROUP], "params": {"objectType": "companies"},
                                       "body": {"name": "crmsync_status", "label": "Status", "type": "enumeration",
                                                "fieldType": "select", "groupName": "crmsync", "options": [
                                                    {"label": "Green", "value": "green", "hidden": False}]}},
    "crm.properties.core_api.update": {"setup": [_GROUP, _PROP],
                                       "params": {"objectType": "companies", "propertyName": "crmsync_score"},
                                       "body": {"label": "Coverage score"}},
    "crm.properties.core_api.archive": {"setup": [_GROUP, _PROP],
                                        "params": {"objectType": "companies", "propertyName": "crmsync_score"}},
    "crm.properties.batch_api.read": {"params": {"objectType": "companies"},
                                      "body": {"archived": False, "inputs": [{"name": "name"}, {"name": "nope"}]}},
    "crm.properties.batch_api.create": {"setup": [_GROUP], "params": {"objectType": "companies"},
                                        "body": {"inputs": [{"name": "crmsync_a", "label": "A", "type": "string",
                                                             "fieldType": "text", "groupName": "crmsync"}]}},
    "crm.properties.batch_api.archive": {"setup": [_GROUP, _PROP], "params": {"objectType": "companies"},
                                         "body": {"inputs": [{"name": "crmsync_score"}]}},
    "crm.properties.groups_api.get_all": {"params": {"objectType": "companies"}},
    "crm.properties.groups_api.get_by_name": {"params": {"objectType": "companies",
                                                         "groupName": "companyinformation"}},
    "crm.properties.groups_api.create": {"params": {"objectType": "companies"},
                                         "body": {"name": "crmsync", "label": "crmsync", "displayOrder": -1}},
    "crm.properties.groups_api.update": {"setup": [_GROUP], "params": {"objectType": "companies",
                                                                       "groupName": "crmsync"},
                                         "body": {"label": "crmsync fields"}},
    "crm.properties.groups_api.archive": {"setup": [_GROUP], "params": {"objectType": "companies",
                                                                        "groupName": "crmsync"}},
}


def _send(hs: Any, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None
          ) -> requests.Response:
    return requests.request(method, hs.url + path, params=query, json=body,
                            headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)


def _run(hs: Any, api_key: str, scenario: dict[str, Any]) -> tuple[int, Any, list[str]]:
    label_id = None
    for line, body in scenario.get("setup", []):
        method, path = line.split(" ", 1)
        r = _send(hs, method, path, body=body)
        assert r.status_code < 300, (line, r.text)
        if "labels" in path:
            label_id = r.json()["results"][0]["typeId"]
    api = CONTRACT["apis"][api_key]
    method, template = api["http"].split(" ", 1)
    params = {k: (label_id if v == "$label" else v) for k, v in scenario.get("params", {}).items()}
    path = template.format(**params)
    body = scenario.get("body")
    if isinstance(body, dict) and body.get("associationTypeId") == "$label":
        body = {**body, "associationTypeId": label_id}
    problems: list[str] = []
    if api.get("body") and body is not None:
        problems += [f"request: {p}" for p in validate(namespace(api_key), api["body"], body)]
    wire = {q["wire"] for q in api["query"]}
    unknown = set(scenario.get("query", {})) - wire
    problems += [f"request: query param {q} not used by the client" for q in unknown]
    r = _send(hs, method, path, scenario.get("query"), body)
    data = r.json() if r.content else None
    return r.status_code, data, problems + check_response(api_key, r.status_code, data)


@pytest.mark.parametrize("api_key", sorted(SCENARIOS))
def test_response_matches_client_contract(hs, api_key):
    status, body, problems = _run(hs, api_key, SCENARIOS[api_key])
    assert problems == [], f"{status} {json.dumps(body)[:500]}"


def test_every_contract_method_is_exercised():
    missing = set(CONTRACT["apis"]) - set(SCENARIOS) - NOT_SERVED
    assert missing == set()


def test_partial_failures_answer_207_with_standard_errors(hs):
    """The 207 variants validate too (the scenarios above include one unknown id each)."""
    for key in ("crm.contacts.batch_api.read", "crm.contacts.batch_api.update",
                f"{V4}.batch_api.get_page", f"{V4}.batch_api.create", "crm.properties.batch_api.read"):
        status, body, problems = _run(hs, key, SCENARIOS[key])
        assert status == 207 and body["numErrors"] >= 1 and problems == [], key


def test_error_bodies_carry_hubspot_error_fields(hs):
    r = _send(hs, "GET", "/crm/v3/objects/contacts/999999")
    assert r.status_code == 404
    body = r.json()
    assert {"status", "message", "correlationId", "category"} <= set(body)
    r = _send(hs, "POST", "/crm/v3/objects/contacts/batch/create",
              body={"inputs": [{"properties": {"email": "bad"}}]})
    assert r.status_code == 400 and r.json()["category"] == "VALIDATION_ERROR"
