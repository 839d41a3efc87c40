"""Reads that other open-source connectors make and crmsync does not (bench/peers.py).

Kept apart from the handlers crmsync relies on: each answers as the vendor
documents, for what the sandbox holds (the standard objects, no custom ones).

  schemas   GET /crm/v3/schemas, /crm-object-schemas/v3/schemas: the account's custom
            object schemas, {"results": [...]}
            (developers.hubspot.com/docs/api-reference/legacy/crm/objects/schemas/get-schemas).
            The sandbox has no custom objects: an empty list. Airbyte's source-hubspot
            lists them on discover and check.
  legacy_properties  GET /properties/v1|v2/{object}/properties: the legacy properties API
            (developers.hubspot.com/docs/api-reference/legacy/crm/properties/v1/company-properties/
            get-properties-v1-companies-properties): a JSON array of definitions, the v3 ones
            in the legacy shape (readOnlyValue/readOnlyDefinition flat, no archived).
            Airbyte's source-hubspot builds its stream schemas from it. Object types the
            sandbox does not model (tickets, products, forms, ...) answer the three
            properties every HubSpot object has (hs_object_id, hs_createdate,
            hs_lastmodifieddate).
  v4 association batch reads between types the sandbox does not associate
            (POST /crm/v4/associations/{from}/{to}/batch/read with deals -> line_items,
            contacts -> contacts, ...; developers.hubspot.com/docs/api-reference/latest/crm/
            associations/association-details/batch-read): both are HubSpot object types,
            so the answer is HubSpot's for records with none: 207, no results, one
            NO_ASSOCIATIONS_FOUND error per input. Airbyte's source-hubspot reads every
            association type its streams declare. (api_associations.py asks
            `unassociated_pair` before its own pair check.)
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from .api_base import Reply
from .objects import Crm
from .store import iso, object_type

PEER_ROUTES = [
    ("/crm/v3/schemas", "GET", "schemas"),
    ("/crm-object-schemas/v3/schemas", "GET", "schemas"),
    ("/properties/<any(v1, v2):version>/<obj>/properties", "GET", "legacy_properties"),
    # The date-versioned OAuth token path (same grant as /oauth/v1/token), which
    # Singer's tap-hubspot 4.x posts its refresh_token grant to
    # (developers.hubspot.com/docs/api-reference/2026-03/authentication/oauth-tokens/refresh-oauth-token).
    ("/oauth/2026-03/token", "POST", "oauth_token"),
]

LEGACY_KEYS = ("name", "label", "description", "groupName", "type", "fieldType", "options",
               "displayOrder", "formField", "hidden", "calculated", "externalOptions",
               "hubspotDefined")


# HubSpot's object types (standard objects and engagements) by plural name and singular.
HUBSPOT_TYPES = {
    "contacts", "companies", "deals", "tickets", "line_items", "products", "quotes", "calls",
    "emails", "meetings", "notes", "tasks", "communications", "postal_mail", "feedback_submissions",
    "goal_targets", "leads", "invoices", "orders", "carts", "discounts", "fees", "taxes",
    "subscriptions", "payments", "users", "listings", "projects", "services", "appointments",
    "courses", "partner_clients",
}


def _type_name(name: str) -> str | None:
    n = name.lower()
    if n in HUBSPOT_TYPES:
        return n
    if n + "s" in HUBSPOT_TYPES:
        return n + "s"
    if n == "company":
        return "companies"
    return object_type(n)


def unassociated_pair(crm: Crm, a: str, b: str) -> bool:
    """Both are HubSpot object types, but the sandbox defines no association between them."""
    ta, tb = _type_name(a), _type_name(b)
    return ta is not None and tb is not None and (ta, tb) not in crm.assoc.defaults


BASIC = (("hs_object_id", "Record ID", "number", "number"),
         ("hs_createdate", "Create Date", "datetime", "date"),
         ("hs_lastmodifieddate", "Last Modified Date", "datetime", "date"))


def _basic(name: str, label: str, type_: str, field: str) -> dict[str, Any]:
    return {"name": name, "label": label, "description": "", "groupName": "information",
            "type": type_, "fieldType": field, "options": [], "displayOrder": -1,
            "formField": False, "hidden": False, "calculated": False, "externalOptions": False,
            "hubspotDefined": True, "readOnlyValue": True, "readOnlyDefinition": True,
            "mutableDefinitionNotDeletable": True, "deleted": False}


def _one(kind: str) -> str:
    return "company" if kind == "companies" else kind.removesuffix("s")


def assoc_batch_read_none(crm: Crm, req: Request, a: str, b: str) -> Reply:
    """A v4 batch read for an unassociated pair (see unassociated_pair)."""
    ta, tb = _type_name(a) or a, _type_name(b) or b
    body = req.get_json(silent=True) or {}
    errors = [{
        "status": "error", "category": "OBJECT_NOT_FOUND",
        "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
        "message": f"No {_one(tb)} is associated with {_one(ta)} {it.get('id')}.",
        "context": {"fromObjectId": [str(it.get("id"))]},
    } for it in body.get("inputs") or [] if isinstance(it, dict)]
    now = iso(crm.store.now_ms())
    out: dict[str, Any] = {"status": "COMPLETE", "results": [], "requestedAt": now,
                           "startedAt": now, "completedAt": now, "links": {}}
    if not errors:
        return 200, out
    out.update(numErrors=len(errors), errors=errors)
    return 207, out


class PeerReadsApi:
    """Handlers for PEER_ROUTES (mixed into HubSpotApp)."""

    crm: Crm

    def h_schemas(self, req: Request) -> Reply:
        return 200, {"results": []}

    def h_legacy_properties(self, req: Request, version: str, obj: str) -> Reply:
        kind = object_type(obj)
        if kind is None or kind not in self.crm.schemas:
            return 200, [_basic(name, label, type_, field) for name, label, type_, field in BASIC]
        out: list[dict[str, Any]] = []
        for prop in self.crm.schemas[kind].props.values():
            wire = prop.wire()
            item = {k: wire.get(k) for k in LEGACY_KEYS}
            meta = wire.get("modificationMetadata") or {}
            item["readOnlyValue"] = bool(meta.get("readOnlyValue"))
            item["readOnlyDefinition"] = bool(meta.get("readOnlyDefinition"))
            item["mutableDefinitionNotDeletable"] = bool(wire.get("hubspotDefined"))
            item["deleted"] = False
            out.append(item)
        return 200, out
