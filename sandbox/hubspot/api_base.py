"""Shared plumbing of the HubSpot emulator's handlers: inputs, lookups, batch envelopes.

`ApiBase` holds what every handler group (objects in app.py, associations in
api_associations.py, properties in api_properties.py) needs: the object type of
a path segment, record lookup by id or unique property (merged ids resolve),
the 100-input cap, and HubSpot's batch response envelope (200/201, or 207
with `numErrors` and StandardError `errors`).
"""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Request

from .objects import Crm, HsError
from .store import Rec, Store, iso, object_type

Reply = tuple[int, Any]  # (status, JSON body or None)
MAX_BATCH = 100


class ApiBase:
    """Helpers shared by the handler mixins; HubSpotApp sets `crm` and `store`."""

    crm: Crm
    store: Store

    def _obj(self, name: str) -> str:
        obj = object_type(name)
        if obj is None:
            raise HsError(400, "VALIDATION_ERROR", f"Unable to infer object type from: {name}")
        return obj

    def _base(self, req: Request) -> str:
        return req.host_url.rstrip("/")

    def _now_iso(self) -> str:
        return iso(self.store.now_ms())

    def _batch(self, results: list[Any], errors: list[dict[str, Any]], ok: int,
               started: str) -> Reply:
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "requestedAt": started,
                                "startedAt": started, "completedAt": self._now_iso(), "links": {}}
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
            return 207, body
        return ok, body

    def _inputs(self, body: dict[str, Any], cap: int = MAX_BATCH) -> list[dict[str, Any]]:
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise HsError(400, "VALIDATION_ERROR", "Invalid input JSON: inputs is required")
        if len(inputs) > cap:
            raise HsError(400, "VALIDATION_ERROR",
                          f"Batch input is limited to {cap} inputs; got {len(inputs)}",
                          context={"limit": [str(cap)]})
        return inputs

    def _find(self, obj: str, rid: str, id_property: str | None = None, archived: bool = False
              ) -> Rec | None:
        if id_property and id_property != "hs_object_id":
            if id_property == "email" and obj == "contacts":
                found = self.store.find_email(rid)
                return None if found is None else self.store.get(obj, found)
            for rec in self.store.tables[obj].live.values():
                if rec.props.get(id_property) == rid:
                    return rec
            return None
        if not str(rid).isdigit():
            return None
        return self.store.get(obj, int(rid), archived=archived)

def _json_body(req: Request) -> Any:
    raw = req.get_data(as_text=True)
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError as e:
        raise HsError(400, "VALIDATION_ERROR", f"Invalid input JSON on line 1: {e}") from e
def _body(req: Request) -> dict[str, Any]:
    data = _json_body(req)
    if not isinstance(data, dict):
        raise HsError(400, "VALIDATION_ERROR", "Invalid input JSON: expected an object")
    return data
def _multi(q: Any, name: str) -> list[str]:
    """A list query param sent repeated (the client) or comma-separated (curl users)."""
    out: list[str] = []
    for v in q.getlist(name):
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out
def _bool(v: str | None) -> bool:
    return str(v or "").strip().lower() == "true"
def _int(v: str | None, default: int) -> int:
    try:
        return int(v) if v not in (None, "") else default
    except ValueError as e:
        raise HsError(400, "VALIDATION_ERROR", f"Expected an integer, got {v!r}") from e
def _std_error(category: str, message: str, context: dict[str, list[str]], sub: str | None = None
               ) -> dict[str, Any]:
    err: dict[str, Any] = {"status": "error", "category": category, "message": message,
                           "context": context, "errors": [], "links": {}}
    if sub:
        err["subCategory"] = sub
    return err
