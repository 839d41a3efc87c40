"""Write-side REST handlers: the shared save path (validation, reject_write and
post_write faults), sObject Collections and /composite. Mixed into
SalesforceApp (app.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from werkzeug.datastructures import Headers, MultiDict

from .store import Row, Table, UnknownObject, WriteError
from .wire import Req, Resp, SfError, check_size, record_body

if TYPE_CHECKING:
    from .server import SalesforceSandbox
    from .store import Store


class WriteHandlers:
    """Handlers that change records."""

    sb: SalesforceSandbox
    store: Store

    if TYPE_CHECKING:  # provided by ReadHandlers (rest.py) and SalesforceApp (app.py)

        def _table(self, obj: str) -> Table: ...

        def _ext_rows(self, t: Table, field_name: str, value: Any) -> list[Row]: ...

        def _record_json(self, t: Table, row: Row, v: str, fields: str | None) -> dict[str, Any]: ...

        def match(self, method: str, path: str) -> Any: ...

        def _call(self, handler: Any, req: Req, params: dict[str, str]) -> Resp: ...

    # ------------------------------------------------------------ writes (shared)
    def _save(self, t: Table, row: Row | None, values: dict[str, Any], op: str) -> str:
        """Validate, check reject_write faults, apply. Returns the Id; raises WriteError."""
        creating = row is None
        cols = self.store.prepare(t, values, creating=creating, system=False, row=row)
        self._check_reject(t, row, values, op)
        if creating:
            new_id = self.store.insert(t, cols)
        else:
            self.store.apply_update(t, row, cols)  # type: ignore[arg-type]
            new_id = row[0]  # type: ignore[index]
        self._post_write(t, new_id)
        return new_id

    def _post_write(self, t: Table, id_: str) -> None:
        """Fault kind post_write: a workflow rule that rewrites fields after our write (W9)."""
        if not any(r.kind == "post_write" for r in self.sb.faults.rules):
            return
        row = self.store.get_row(t, id_)
        record = {**self.store.record(t, row), "object": t.name, "id": id_}  # type: ignore[arg-type]
        rule = self.sb.faults.match_record("post_write", record)
        if rule is not None:
            self.store.update(t.name, id_, dict(rule.get("set") or {}), system=True)

    def _delete(self, t: Table, row: Row) -> None:
        self._check_reject(t, row, {}, "delete")
        self.store.delete(t.name, row[0])

    def _check_reject(self, t: Table, row: Row | None, values: dict[str, Any], op: str) -> None:
        if not any(r.kind == "reject_write" for r in self.sb.faults.rules):
            return
        record: dict[str, Any] = {}
        if row is not None:
            record.update(self.store.record(t, row))
        record.update({k: v for k, v in values.items() if k != "attributes"})
        record.update({"object": t.name, "op": op})
        if row is not None:
            record["id"] = record["Id"] = row[0]
        rule = self.sb.faults.match_record("reject_write", record)
        if rule is not None:
            raise WriteError(
                str(rule.get("code") or rule.get("errorCode") or "FIELD_CUSTOM_VALIDATION_EXCEPTION"),
                str(rule.get("message") or "Rejected by a sandbox validation rule"),
                rule.get("fields") or [],
            )

    # ------------------------------------------------------------ collections
    def h_collection(self, req: Req, v: str) -> Resp:
        if req.method == "DELETE":
            ids = [i for i in (req.args.get("ids") or "").split(",") if i]
            all_or_none = (req.args.get("allOrNone") or "false").lower() == "true"
            check_size(ids)
            return Resp(200, self._run_batch([(None, i) for i in ids], all_or_none, self._delete_one))
        body = req.json() or {}
        records = body.get("records") or []
        check_size(records)
        op = self._create_one if req.method == "POST" else self._update_one
        return Resp(200, self._run_batch([(r, None) for r in records], bool(body.get("allOrNone")), op))

    def h_collection_upsert(self, req: Req, v: str, obj: str, field: str) -> Resp:
        """PATCH composite/sobjects/{SObject}/{ExternalIdField}: "Only external ids are
        supported. Don't use record ids." and "Don't set the id field for any object"
        (REST API guide, "Upsert Multiple Records with Fewer Round-Trips"; api-facts §11).
        The error for `Id` or a plain field is undocumented: the harsher reading refuses
        the whole request (400, no per-record results); a record carrying Id fails alone."""
        t = self._table(obj)
        f = t.field(field)
        if f is not None and not self.store.readable(t, f):
            f = None
        if f is None:
            raise SfError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {field}")
        if not f.external_id:
            raise SfError(400, "INVALID_FIELD", f"Field name provided, {f.name} is not an External ID or indexed field for {t.name}")
        body = req.json() or {}
        records = body.get("records") or []
        check_size(records)

        def upsert(rec: dict[str, Any], _: Any, dry: bool) -> dict[str, Any] | Callable[[], dict[str, Any]]:
            rtype = (rec.get("attributes") or {}).get("type", t.name)
            if rtype.lower() != t.name.lower():
                raise WriteError("INVALID_TYPE", f"The sObject type {rtype} does not match the upsert type {t.name}")
            value = next((val for k, val in rec.items() if k.lower() == f.name.lower()), None)
            if value in (None, ""):
                raise WriteError("MISSING_ARGUMENT", f"{f.name} not specified", [f.name])
            if any(k.lower() == "id" for k in rec):
                raise WriteError("INVALID_FIELD", "Don't set the Id field in an upsert: use the external ID field", ["Id"])
            matches = self._ext_rows(t, f.name, value)
            if len(matches) > 1:
                raise WriteError("DUPLICATE_EXTERNAL_ID", f"{f.name}: more than one record found for external id field: {[m[0] for m in matches]}", [f.name])
            values = record_body(rec)
            row = matches[0] if matches else None
            cols = self.store.prepare(t, values, creating=row is None, system=False, row=row)
            self._check_reject(t, row, values, "upsert")

            def apply() -> dict[str, Any]:
                if row is None:
                    new_id = self.store.insert(t, cols)
                    self._post_write(t, new_id)
                    return {"id": new_id, "success": True, "errors": [], "created": True}
                self.store.apply_update(t, row, cols)
                self._post_write(t, row[0])
                return {"id": row[0], "success": True, "errors": [], "created": False}

            return apply if dry else apply()

        return Resp(200, self._run_batch([(r, None) for r in records], bool(body.get("allOrNone")), upsert))

    def _create_one(self, rec: dict[str, Any], _: Any, dry: bool) -> Any:
        t = self._record_table(rec)
        values = record_body(rec)
        if any(k.lower() == "id" for k in values):
            raise WriteError("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
        cols = self.store.prepare(t, values, creating=True, system=False)
        self._check_reject(t, None, values, "create")

        def apply() -> dict[str, Any]:
            new_id = self.store.insert(t, cols)
            self._post_write(t, new_id)
            return {"id": new_id, "success": True, "errors": []}

        return apply if dry else apply()

    def _update_one(self, rec: dict[str, Any], _: Any, dry: bool) -> Any:
        t = self._record_table(rec)
        id_ = next((val for k, val in rec.items() if k.lower() == "id"), None)
        if not id_:
            raise WriteError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
        row = self._row_for_write(t, str(id_))
        values = record_body(rec)
        cols = self.store.prepare(t, values, creating=False, system=False, row=row)
        self._check_reject(t, row, values, "update")

        def apply() -> dict[str, Any]:
            self.store.apply_update(t, row, cols)
            self._post_write(t, row[0])
            return {"id": row[0], "success": True, "errors": []}

        return apply if dry else apply()

    def _delete_one(self, _: Any, id_: str, dry: bool) -> Any:
        t = self.store.table_for_id(id_)
        if t is None:
            raise WriteError("MALFORMED_ID", f"malformed id {id_}")
        row = self._row_for_write(t, id_)
        self._check_reject(t, row, {}, "delete")

        def apply() -> dict[str, Any]:
            self.store.delete(t.name, row[0])
            return {"id": row[0], "success": True, "errors": []}

        return apply if dry else apply()

    def _row_for_write(self, t: Table, id_: str) -> Row:
        other = self.store.table_for_id(id_)
        if other is not t:
            raise WriteError("MALFORMED_ID", f"{t.name} ID: id value of incorrect type: {id_}", ["Id"])
        row = self.store.get_row(t, id_)
        if row is None:
            raise WriteError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
        if t.is_deleted(row):
            raise WriteError("ENTITY_IS_DELETED", "entity is deleted", [])
        return row

    def _record_table(self, rec: Any) -> Table:
        if not isinstance(rec, dict):
            raise WriteError("JSON_PARSER_ERROR", "record is not a JSON object")
        rtype = (rec.get("attributes") or {}).get("type")
        if not rtype:
            raise WriteError("INVALID_TYPE", "When creating or updating records, the type must be specified in attributes")
        try:
            return self.store.table(rtype)
        except UnknownObject:
            raise WriteError("INVALID_TYPE", f"sObject type '{rtype}' is not supported.") from None

    def _run_batch(
        self, items: list[tuple[Any, Any]], all_or_none: bool, op: Callable[[Any, Any, bool], Any]
    ) -> list[dict[str, Any]]:
        """Per-record SaveResults in input order; allOrNone validates all before applying any."""
        if not all_or_none:
            out = []
            for rec, id_ in items:
                try:
                    out.append(op(rec, id_, False))
                except WriteError as e:
                    out.append({"success": False, "errors": [e.as_error()]})
            return out
        prepared: list[Any] = []
        failed = False
        for rec, id_ in items:
            try:
                prepared.append(op(rec, id_, True))
            except WriteError as e:
                prepared.append(e)
                failed = True
        if failed:
            rolled = {
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
                "fields": [],
            }
            return [
                {"success": False, "errors": [p.as_error() if isinstance(p, WriteError) else rolled]}
                for p in prepared
            ]
        return [apply() for apply in prepared]

    def h_collection_read(self, req: Req, v: str, obj: str) -> Resp:
        t = self._table(obj)
        if req.method == "POST":
            body = req.json() or {}
            ids, fields = body.get("ids") or [], body.get("fields") or []
        else:
            ids = [i for i in (req.args.get("ids") or "").split(",") if i]
            fields = [f for f in (req.args.get("fields") or "").split(",") if f]
        if not fields:
            raise SfError(400, "MISSING_ARGUMENT", "fields not specified")
        if len(ids) > 2000:
            raise SfError(400, "EXCEEDED_ID_LIMIT", "Too many ids: the limit is 2000")
        out: list[Any] = []
        for id_ in ids:
            row = self.store.get_row(t, id_)
            out.append(None if row is None or t.is_deleted(row) else self._record_json(t, row, v, ",".join(fields)))
        return Resp(200, out)

    # ------------------------------------------------------------ bulk 2.0 ingest
    def h_ingest_create(self, req: Req, v: str) -> Resp:
        return Resp(200, self.sb.ingest.info(self.sb.ingest.create(req.json() or {}, v)))

    def h_ingest_list(self, req: Req, v: str) -> Resp:
        jobs = [self.sb.ingest.info(j) for j in self.sb.ingest.jobs.values()]
        return Resp(200, {"done": True, "records": jobs, "nextRecordsUrl": None})

    def h_ingest_upload(self, req: Req, v: str, job: str) -> Resp:
        self.sb.ingest.upload(self.sb.ingest.get(job), req.body)
        return Resp(201)

    def h_ingest_job(self, req: Req, v: str, job: str) -> Resp:
        j = self.sb.ingest.get(job)
        if req.method == "DELETE":
            self.sb.ingest.delete(j)
            return Resp(204)
        if req.method == "PATCH":
            state = (req.json() or {}).get("state")
            if state == "UploadComplete":
                self.sb.ingest.close(j, self._ingest_row)
            elif state == "Aborted":
                self.sb.ingest.abort(j)
            else:
                raise SfError(400, "INVALIDJOBSTATE", f"Invalid state for an ingest job: {state}")
        return Resp(200, self.sb.ingest.info(j))

    def h_ingest_results(self, req: Req, v: str, job: str, kind: str) -> Resp:
        text = self.sb.ingest.results(self.sb.ingest.get(job), kind)
        return Resp(200, text, content_type="text/csv;charset=UTF-8")

    def _ingest_row(self, t: Table, values: dict[str, Any], operation: str, ext: str | None) -> tuple[str, bool]:
        """Apply one ingest CSV row like the REST write it stands for."""
        id_ = next((val for k, val in values.items() if k.lower() == "id"), None)
        rest = {k: val for k, val in values.items() if k.lower() != "id"}
        if operation == "insert":
            if id_:
                raise WriteError("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
            return self._save(t, None, rest, "create"), True
        if operation == "upsert" and ext and ext != "Id":
            key = next((val for k, val in values.items() if k.lower() == ext.lower()), None)
            if key in (None, ""):
                raise WriteError("MISSING_ARGUMENT", f"{ext} not specified", [ext])
            matches = self._ext_rows(t, ext, key)
            if len(matches) > 1:
                raise WriteError("DUPLICATE_EXTERNAL_ID", f"{ext}: more than one record found for external id field", [ext])
            if not matches:
                return self._save(t, None, rest, "upsert"), True
            self._save(t, matches[0], rest, "upsert")
            return matches[0][0], False
        if not id_:
            raise WriteError("MISSING_ARGUMENT", f"Id not specified in an {operation} call", ["Id"])
        row = self._row_for_write(t, str(id_))
        if operation in ("delete", "hardDelete"):
            self._check_reject(t, row, {}, "delete")
            if operation == "hardDelete":
                self.store.purge(t.name, row[0])
            else:
                self.store.delete(t.name, row[0])
            return row[0], False
        self._save(t, row, rest, "update")
        return row[0], False

    # ------------------------------------------------------------ composite
    def h_composite(self, req: Req, v: str) -> Resp:
        body = req.json() or {}
        subs = body.get("compositeRequest") or []
        if len(subs) > 25:
            raise SfError(400, "INVALID_BATCH_REQUEST", "Composite request may contain up to 25 subrequests")
        queries = sum(1 for s in subs if re.search(r"/(query|queryAll)(/|\?|$)", str(s.get("url", ""))))
        if queries > 5:
            raise SfError(400, "INVALID_BATCH_REQUEST", "Composite request may contain up to 5 query subrequests")
        all_or_none = bool(body.get("allOrNone"))
        results: dict[str, Any] = {}
        out: list[dict[str, Any]] = []
        halted = False
        for sub in subs:
            ref = str(sub.get("referenceId", ""))
            if halted:
                out.append({"body": [{"errorCode": "PROCESSING_HALTED", "message": "The transaction was rolled back since another operation in the same transaction failed."}], "httpHeaders": {}, "httpStatusCode": 400, "referenceId": ref})
                continue
            try:
                url = _resolve_refs(str(sub.get("url", "")), results)
                sub_body = _resolve_refs_json(sub.get("body"), results)
            except KeyError as e:
                out.append({"body": [{"errorCode": "PROCESSING_HALTED", "message": f"Invalid reference specified. No value for {e.args[0]} found"}], "httpHeaders": {}, "httpStatusCode": 400, "referenceId": ref})
                halted = all_or_none
                continue
            resp = self._subrequest(req, str(sub.get("method", "GET")).upper(), url, sub_body, sub.get("httpHeaders") or {})
            results[ref] = resp.body
            headers = {k: val for k, val in resp.headers.items() if k != "Sforce-Limit-Info"}
            if resp.status == 201 and isinstance(resp.body, dict) and resp.body.get("id"):
                headers["Location"] = f"/services/data/v{v}/sobjects/{_path_obj(url)}/{resp.body['id']}"
            out.append({"body": resp.body, "httpHeaders": headers, "httpStatusCode": resp.status, "referenceId": ref})
            if resp.status >= 400 and all_or_none:
                halted = True
        return Resp(200, {"compositeResponse": out})

    def _subrequest(self, req: Req, method: str, url: str, body: Any, headers: dict[str, str]) -> Resp:
        parts = urlsplit(url)
        path = parts.path.rstrip("/")
        sub_headers = Headers(req.headers)
        for k, val in headers.items():
            sub_headers[k] = val
        sub = Req(method, path, MultiDict(parse_qs(parts.query)), sub_headers, b"" if body is None else json.dumps(body).encode(),
                  user=req.user)
        try:
            route, kind, handler, params = self.match(method, path)
        except SfError as e:
            return e.resp()
        if kind != "api" or route == "composite":
            return SfError(400, "INVALID_BATCH_REQUEST", f"{route} is not supported in a composite request").resp()
        resp = self._call(handler, sub, params)
        if resp.raw is not None and resp.body is None:
            resp.body = json.loads(resp.raw)
        return resp


def _path_obj(url: str) -> str:
    m = re.search(r"/sobjects/(\w+)", url)
    return m.group(1) if m else ""


_REF = re.compile(r"@\{([^}.\[]+)((?:\.[^}.\[]+|\[\d+\])*)\}")


def _lookup_ref(results: dict[str, Any], ref: str, path: str) -> Any:
    if ref not in results:
        raise KeyError(ref)
    value = results[ref]
    for step in re.findall(r"\.([^.\[]+)|\[(\d+)\]", path):
        key, index = step
        value = value[int(index)] if index else value[key]
    return value


def _resolve_refs(text: str, results: dict[str, Any]) -> str:
    return _REF.sub(lambda m: str(_lookup_ref(results, m.group(1), m.group(2))), text)


def _resolve_refs_json(body: Any, results: dict[str, Any]) -> Any:
    if isinstance(body, str):
        m = _REF.fullmatch(body)
        if m:
            return _lookup_ref(results, m.group(1), m.group(2))
        return _resolve_refs(body, results)
    if isinstance(body, dict):
        return {k: _resolve_refs_json(v, results) for k, v in body.items()}
    if isinstance(body, list):
        return [_resolve_refs_json(v, results) for v in body]
    return body
