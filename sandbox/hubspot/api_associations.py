"""Associations v4 handlers of the HubSpot emulator (batch read/create/archive, labels, pairs).

Wire shapes follow hubspot-api-client 12's v4 models: batch read answers
`{"from", "to": [{"toObjectId", "associationTypes"}], "paging"?}` per input,
paged at 500 targets; records without associations come back as 207 errors
with subCategory crm.associations.NO_ASSOCIATIONS_FOUND. Labelled creates
answer 201 `LabelsBetweenObjectPair`, default creates 200.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from werkzeug.wrappers import Request

from .api_base import MAX_BATCH, ApiBase, Reply, _body, _int, _json_body, _std_error
from .api_peers import assoc_batch_read_none, unassociated_pair
from .objects import HsError, decode_after, encode_after, not_found
from .store import SINGULAR, TYPE_ID_OF, Rec

MAX_ASSOC_READ = 1000
MAX_ASSOC_WRITE = 2000
ASSOC_PAGE = 500


class AssociationsApi(ApiBase):
    """Handlers for /crm/v4/associations/... and /crm/v4/objects/.../associations/..."""

    def _pair(self, a: str, b: str) -> tuple[str, str]:
        a, b = self._obj(a), self._obj(b)
        if (a, b) not in self.crm.assoc.defaults:
            raise HsError(400, "VALIDATION_ERROR", f"No association definitions between {a} and {b}")
        return a, b

    def _multi_to(self, a: str, a_id: int, b: str) -> list[dict[str, Any]]:
        types = self.crm.assoc.types
        return [{"toObjectId": tid, "associationTypes": [types[t].spec() for t in tys]}
                for tid, tys in self.crm.assoc.targets(a, a_id, b)]

    def h_assoc_batch_read(self, req: Request, a: str, b: str) -> Reply:
        if unassociated_pair(self.crm, a, b):  # other connectors' reads (api_peers.py)
            return assoc_batch_read_none(self.crm, req, a, b)
        a, b = self._pair(a, b)
        started = self._now_iso()
        results, errors = [], []
        for it in self._inputs(_body(req), MAX_ASSOC_READ):
            rid = str(it.get("id", ""))
            rec = self._find(a, rid)
            to = self._multi_to(a, rec.id, b) if rec else []
            if not to:
                errors.append(_std_error(
                    "OBJECT_NOT_FOUND", f"No {SINGULAR[b]} is associated with {SINGULAR[a]} {rid}.",
                    {"fromObjectId": [rid]}, sub="crm.associations.NO_ASSOCIATIONS_FOUND"))
                continue
            start = decode_after(it.get("after"))
            item: dict[str, Any] = {"from": {"id": rid}, "to": to[start:start + ASSOC_PAGE]}
            if start + ASSOC_PAGE < len(to):
                item["paging"] = {"next": {"after": encode_after(start + ASSOC_PAGE), "link": None}}
            results.append(item)
        return self._batch(results, errors, 200, started)

    def _check_types(self, a: str, b: str, specs: list[dict[str, Any]]) -> list[int]:
        out = []
        for s in specs or []:
            tid = int(s.get("associationTypeId", 0))
            at = self.crm.assoc.types.get(tid)
            if at is None or (at.from_obj, at.to_obj) != (a, b):
                raise HsError(400, "VALIDATION_ERROR",
                              f"{tid} is not a valid association type between {a} and {b}",
                              subCategory="crm.associations.INVALID_ASSOCIATION_TYPE")
            out.append(tid)
        return out

    def _labels_pair(self, a: str, a_id: int, b: str, b_id: int, tids: list[int]) -> dict[str, Any]:
        types = self.crm.assoc.types
        return {"fromObjectTypeId": TYPE_ID_OF[a], "fromObjectId": a_id, "toObjectTypeId": TYPE_ID_OF[b],
                "toObjectId": b_id, "labels": [types[t].label for t in tids if types[t].label]}

    def h_assoc_batch_create(self, req: Request, a: str, b: str) -> Reply:
        a, b = self._pair(a, b)
        started = self._now_iso()
        results, errors = [], []
        for it in self._inputs(_body(req), MAX_ASSOC_WRITE):
            fid, tid = str((it.get("from") or {}).get("id", "")), str((it.get("to") or {}).get("id", ""))
            tids = self._check_types(a, b, it.get("types") or [])
            x, y = self._find(a, fid), self._find(b, tid)
            if x is None or y is None:
                errors.append(_std_error("VALIDATION_ERROR", f"{SINGULAR[a]} {fid} or {SINGULAR[b]} "
                                         f"{tid} does not exist", {"fromObjectId": [fid], "toObjectId": [tid]},
                                         sub="crm.associations.INVALID_OBJECT_IDS"))
                continue
            self.crm.associate(a, x.id, b, y.id, tids)
            results.append(self._labels_pair(a, x.id, b, y.id, tids))
        return self._batch(results, errors, 201, started)

    def _default_spec(self, a: str, b: str, x: int, y: int) -> list[dict[str, Any]]:
        d = self.crm.assoc.defaults
        return [{"from": {"id": str(x)}, "to": {"id": str(y)},
                 "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": d[(a, b)]}},
                {"from": {"id": str(y)}, "to": {"id": str(x)},
                 "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": d[(b, a)]}}]

    def h_assoc_batch_default(self, req: Request, a: str, b: str) -> Reply:
        a, b = self._pair(a, b)
        started = self._now_iso()
        results, errors = [], []
        for it in self._inputs(_body(req), MAX_ASSOC_WRITE):
            fid, tid = str((it.get("from") or {}).get("id", "")), str((it.get("to") or {}).get("id", ""))
            x, y = self._find(a, fid), self._find(b, tid)
            if x is None or y is None:
                errors.append(_std_error("VALIDATION_ERROR", f"{SINGULAR[a]} {fid} or {SINGULAR[b]} "
                                         f"{tid} does not exist", {"fromObjectId": [fid], "toObjectId": [tid]},
                                         sub="crm.associations.INVALID_OBJECT_IDS"))
                continue
            self.crm.associate(a, x.id, b, y.id, [])
            results.extend(self._default_spec(a, b, x.id, y.id))
        started_body = self._batch(results, [], 200, started)[1]
        if errors:
            started_body["numErrors"] = len(errors)
            started_body["errors"] = errors
        return 200, started_body

    def h_assoc_batch_archive(self, req: Request, a: str, b: str) -> Reply:
        a, b = self._pair(a, b)
        for it in self._inputs(_body(req), MAX_ASSOC_WRITE):
            x = self._find(a, str((it.get("from") or {}).get("id", "")))
            for to in it.get("to") or []:
                y = self._find(b, str(to.get("id", "")))
                if x is not None and y is not None:
                    self.crm.dissociate(a, x.id, b, y.id)
        return 204, None

    def h_assoc_batch_labels_archive(self, req: Request, a: str, b: str) -> Reply:
        a, b = self._pair(a, b)
        for it in self._inputs(_body(req), MAX_ASSOC_WRITE):
            tids = self._check_types(a, b, it.get("types") or [])
            x = self._find(a, str((it.get("from") or {}).get("id", "")))
            y = self._find(b, str((it.get("to") or {}).get("id", "")))
            if x is not None and y is not None:
                self.crm.dissociate(a, x.id, b, y.id, tids)
        return 204, None

    def h_assoc_labels(self, req: Request, a: str, b: str) -> Reply:
        a, b = self._pair(a, b)
        return 200, {"results": [t.spec() for t in self.crm.assoc.labels(a, b)]}

    def h_assoc_labels_create(self, req: Request, a: str, b: str) -> Reply:
        a, b = self._pair(a, b)
        body = _body(req)
        label, name = body.get("label"), body.get("name")
        if not label or not name:
            raise HsError(400, "VALIDATION_ERROR", "label and name are required")
        if self.crm.assoc.find_label(a, b, str(name)) or self.crm.assoc.find_label(a, b, str(label)):
            raise HsError(409, "OBJECT_ALREADY_EXISTS",
                          f"An association label named {name} already exists between {a} and {b}")
        fwd, inv = self.crm.assoc.create_label(a, b, str(label), str(name), body.get("inverseLabel"))
        return 200, {"results": [fwd.spec(), inv.spec()]}

    def h_assoc_labels_update(self, req: Request, a: str, b: str) -> Reply:
        a, b = self._pair(a, b)
        body = _body(req)
        tid = int(body.get("associationTypeId", 0))
        at = self.crm.assoc.types.get(tid)
        if at is None or at.category != "USER_DEFINED" or (at.from_obj, at.to_obj) != (a, b):
            raise HsError(400, "VALIDATION_ERROR", f"{tid} is not a label between {a} and {b}")
        types = self.crm.assoc.types
        types[tid] = replace(at, label=body.get("label") or at.label)
        if body.get("inverseLabel"):
            types[at.inverse] = replace(types[at.inverse], label=body["inverseLabel"])
        return 204, None

    def h_assoc_labels_remove(self, req: Request, a: str, b: str, type_id: int) -> Reply:
        a, b = self._pair(a, b)
        at = self.crm.assoc.types.get(type_id)
        if at is None or at.category != "USER_DEFINED":
            raise HsError(400, "VALIDATION_ERROR", f"{type_id} is not a user-defined label")
        self.crm.assoc.types.pop(at.inverse, None)
        self.crm.assoc.types.pop(type_id, None)
        return 204, None

    def h_assoc_list(self, req: Request, obj: str, rid: str, to: str) -> Reply:
        a, b = self._pair(obj, to)
        rec = self._find(a, rid)
        if rec is None:
            raise not_found(rid)
        limit = min(max(_int(req.args.get("limit"), 500), 1), 500)
        start = decode_after(req.args.get("after"))
        items = self._multi_to(a, rec.id, b)
        body: dict[str, Any] = {"results": items[start:start + limit]}
        if start + limit < len(items):
            token = encode_after(start + limit)
            body["paging"] = {"next": {"after": token, "link": (
                f"{self._base(req)}/crm/v4/objects/{a}/{rec.id}/associations/{b}?after={token}")}}
        return 200, body

    def _two(self, obj: str, rid: str, to: str, to_id: str) -> tuple[str, Rec, str, Rec]:
        a, b = self._pair(obj, to)
        x, y = self._find(a, rid), self._find(b, to_id)
        if x is None:
            raise not_found(rid)
        if y is None:
            raise not_found(to_id)
        return a, x, b, y

    def h_assoc_create(self, req: Request, obj: str, rid: str, to: str, to_id: str) -> Reply:
        a, x, b, y = self._two(obj, rid, to, to_id)
        specs = _json_body(req)
        tids = self._check_types(a, b, specs if isinstance(specs, list) else [])
        self.crm.associate(a, x.id, b, y.id, tids)
        return 201, self._labels_pair(a, x.id, b, y.id, tids)

    def h_assoc_create_default(self, req: Request, obj: str, rid: str, to: str, to_id: str) -> Reply:
        a, x, b, y = self._two(obj, rid, to, to_id)
        self.crm.associate(a, x.id, b, y.id, [])
        return self._batch(self._default_spec(a, b, x.id, y.id), [], 200, self._now_iso())

    def h_assoc_archive(self, req: Request, obj: str, rid: str, to: str, to_id: str) -> Reply:
        a, x, b, y = self._two(obj, rid, to, to_id)
        self.crm.dissociate(a, x.id, b, y.id)
        return 204, None

    def _config(self, t: Any) -> dict[str, Any]:
        d = {"category": t.category, "typeId": t.type_id, "label": t.label}
        limit = self.crm.assoc.limits.get(t.type_id)
        if limit is not None:
            d["userEnforcedMaxToObjectIds"] = limit
        return d

    def h_assoc_config_all(self, req: Request) -> Reply:
        types = sorted(self.crm.assoc.types.values(), key=lambda t: t.type_id)
        return 200, {"results": [self._config(t) for t in types]}

    def h_assoc_config(self, req: Request, a: str, b: str) -> Reply:
        a, b = self._pair(a, b)
        return 200, {"results": [self._config(t) for t in self.crm.assoc.labels(a, b)]}

    def _set_limits(self, req: Request, a: str, b: str) -> list[Any]:
        """Record maxToObjectIds per type (stored and reported; not enforced on writes)."""
        a, b = self._pair(a, b)
        out = []
        for it in self._inputs(_body(req), MAX_BATCH):
            tid = self._check_types(a, b, [{"associationTypeId": it.get("typeId", 0)}])[0]
            self.crm.assoc.limits[tid] = int(it.get("maxToObjectIds", 0))
            out.append(self.crm.assoc.types[tid])
        return out

    def h_assoc_config_create(self, req: Request, a: str, b: str) -> Reply:
        started = self._now_iso()
        return self._batch([self._config(t) for t in self._set_limits(req, a, b)], [], 201, started)

    def h_assoc_config_update(self, req: Request, a: str, b: str) -> Reply:
        started = self._now_iso()
        results = [{"category": t.category, "typeId": t.type_id,
                    "userEnforcedMaxToObjectIds": self.crm.assoc.limits[t.type_id]}
                   for t in self._set_limits(req, a, b)]
        return self._batch(results, [], 200, started)

    def h_assoc_config_purge(self, req: Request, a: str, b: str) -> Reply:
        self._pair(a, b)
        for it in self._inputs(_body(req), MAX_BATCH):
            self.crm.assoc.limits.pop(int(it.get("typeId", 0)), None)
        return 204, None
