"""Properties and property-group handlers of the HubSpot emulator (/crm/v3/properties/...).

Creating a property checks what HubSpot checks: required keys, a known type,
a fieldType compatible with it, an existing group; an existing name answers
409 OBJECT_ALREADY_EXISTS (groups too). HubSpot-defined properties can't be
archived or retyped.
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from .api_base import ApiBase, Reply, _body, _bool, _std_error
from .objects import HsError
from .properties import DEFAULT_FIELD, FIELD_TYPES, Prop, options_from


class PropertiesApi(ApiBase):
    """Handlers for properties, batch properties and property groups."""

    def h_properties(self, req: Request, obj: str) -> Reply:
        schema = self.crm.schemas[self._obj(obj)]
        src = schema.archived if _bool(req.args.get("archived")) else schema.props
        return 200, {"results": [p.wire() for p in src.values()]}

    def h_property(self, req: Request, obj: str, name: str) -> Reply:
        schema = self.crm.schemas[self._obj(obj)]
        src = schema.archived if _bool(req.args.get("archived")) else schema.props
        if name not in src:
            raise HsError(404, "OBJECT_NOT_FOUND", f"Unable to find property {name} for object type "
                          f"{self._obj(obj)}")
        return 200, src[name].wire()

    def _new_property(self, obj: str, body: dict[str, Any]) -> Prop:
        schema = self.crm.schemas[obj]
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
        if missing:
            raise HsError(400, "VALIDATION_ERROR", f"Missing required fields: {missing}")
        name, type_, field_type = str(body["name"]), str(body["type"]), str(body["fieldType"])
        if name in schema.props:
            raise HsError(409, "OBJECT_ALREADY_EXISTS", f"A property named '{name}' already exists.",
                          subCategory="PropertyValidationError.PROPERTY_ALREADY_EXISTS")
        if type_ not in FIELD_TYPES:
            raise HsError(400, "VALIDATION_ERROR", f"{type_} is not a valid property type")
        if field_type not in FIELD_TYPES[type_]:
            raise HsError(400, "VALIDATION_ERROR", f"Invalid fieldType {field_type} for type {type_}; "
                          f"use one of {sorted(FIELD_TYPES[type_])}")
        if body["groupName"] not in schema.groups:
            raise HsError(400, "VALIDATION_ERROR", f"Property group {body['groupName']} does not exist")
        options = [_option(o, i) for i, o in enumerate(body.get("options") or [])]
        if type_ == "bool" and not options:
            options = options_from(["true", "false"])
        p = schema.add_custom(name, type_, self.store.now_ms(), field_type=field_type or DEFAULT_FIELD[type_],
                              group=str(body["groupName"]), label=str(body["label"]))
        p.options = options
        p.description = str(body.get("description") or "")
        p.display_order = int(body.get("displayOrder", -1))
        p.has_unique_value = bool(body.get("hasUniqueValue", False))
        p.hidden = bool(body.get("hidden", False))
        p.form_field = bool(body.get("formField", False))
        p.calculation_formula = body.get("calculationFormula")
        return p

    def h_property_create(self, req: Request, obj: str) -> Reply:
        return 201, self._new_property(self._obj(obj), _body(req)).wire()

    def h_property_update(self, req: Request, obj: str, name: str) -> Reply:
        schema = self.crm.schemas[self._obj(obj)]
        p = schema.props.get(name)
        if p is None:
            raise HsError(404, "OBJECT_NOT_FOUND", f"Unable to find property {name}")
        body = _body(req)
        if p.hubspot_defined and set(body) - {"options", "label", "description", "displayOrder",
                                              "groupName", "hidden", "formField"}:
            raise HsError(400, "VALIDATION_ERROR", f"{name} is a HubSpot defined property; its "
                          "type can't be changed")
        for key, attr in (("label", "label"), ("description", "description"), ("groupName", "group"),
                          ("displayOrder", "display_order"), ("hidden", "hidden"),
                          ("formField", "form_field"), ("type", "type"), ("fieldType", "field_type")):
            if key in body and body[key] is not None:
                setattr(p, attr, body[key])
        if body.get("options") is not None:
            p.options = [_option(o, i) for i, o in enumerate(body["options"])]
        p.updated_ms = self.store.now_ms()
        return 200, p.wire()

    def h_property_archive(self, req: Request, obj: str, name: str) -> Reply:
        schema = self.crm.schemas[self._obj(obj)]
        p = schema.props.get(name)
        if p is not None and p.hubspot_defined:
            raise HsError(400, "VALIDATION_ERROR", f"{name} is a HubSpot defined property and can't "
                          "be archived")
        if p is not None:
            schema.props.pop(name)
            p.archived_ms = self.store.now_ms()
            schema.archived[name] = p
        return 204, None

    def h_properties_batch_read(self, req: Request, obj: str) -> Reply:
        schema = self.crm.schemas[self._obj(obj)]
        body = _body(req)
        src = schema.archived if body.get("archived") else schema.props
        results, missing = [], []
        for it in self._inputs(body, 1000):
            n = str(it.get("name", ""))
            (results.append(src[n].wire()) if n in src else missing.append(n))
        errors = [_std_error("OBJECT_NOT_FOUND", f"Unable to find properties {missing}",
                             {"properties": missing})] if missing else []
        return self._batch(results, errors, 200, self._now_iso())

    def h_properties_batch_create(self, req: Request, obj: str) -> Reply:
        obj = self._obj(obj)
        started = self._now_iso()
        results, errors = [], []
        for it in self._inputs(_body(req), 1000):
            try:
                results.append(self._new_property(obj, it).wire())
            except HsError as e:
                errors.append(_std_error(e.category, e.message, {"name": [str(it.get("name"))]}))
        return self._batch(results, errors, 201, started)

    def h_properties_batch_archive(self, req: Request, obj: str) -> Reply:
        for it in self._inputs(_body(req), 1000):
            self.h_property_archive(req, obj, str(it.get("name", "")))
        return 204, None

    def h_groups(self, req: Request, obj: str) -> Reply:
        schema = self.crm.schemas[self._obj(obj)]
        return 200, {"results": [dict(g) for g in schema.groups.values()]}

    def h_group(self, req: Request, obj: str, name: str) -> Reply:
        schema = self.crm.schemas[self._obj(obj)]
        if name not in schema.groups:
            raise HsError(404, "OBJECT_NOT_FOUND", f"Unable to find property group {name}")
        return 200, dict(schema.groups[name])

    def h_group_create(self, req: Request, obj: str) -> Reply:
        schema = self.crm.schemas[self._obj(obj)]
        body = _body(req)
        name, label = body.get("name"), body.get("label")
        if not name or not label:
            raise HsError(400, "VALIDATION_ERROR", "name and label are required")
        if name in schema.groups:
            raise HsError(409, "OBJECT_ALREADY_EXISTS", f"A property group named '{name}' already exists.")
        g = {"name": str(name), "label": str(label), "displayOrder": int(body.get("displayOrder", -1)),
             "archived": False}
        schema.groups[str(name)] = g
        return 201, dict(g)

    def h_group_update(self, req: Request, obj: str, name: str) -> Reply:
        schema = self.crm.schemas[self._obj(obj)]
        if name not in schema.groups:
            raise HsError(404, "OBJECT_NOT_FOUND", f"Unable to find property group {name}")
        body = _body(req)
        g = schema.groups[name]
        if body.get("label"):
            g["label"] = str(body["label"])
        if body.get("displayOrder") is not None:
            g["displayOrder"] = int(body["displayOrder"])
        return 200, dict(g)

    def h_group_archive(self, req: Request, obj: str, name: str) -> Reply:
        self.crm.schemas[self._obj(obj)].groups.pop(name, None)
        return 204, None

def _option(o: dict[str, Any], i: int) -> dict[str, Any]:
    return {"label": str(o.get("label", o.get("value", ""))), "value": str(o.get("value", "")),
            "displayOrder": int(o.get("displayOrder", i)), "hidden": bool(o.get("hidden", False)),
            "description": str(o.get("description") or "")}
