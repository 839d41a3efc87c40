"""Read-side REST handlers: discovery, describe, query/queryAll, single records,
getUpdated/getDeleted, Bulk API 2.0 query jobs, the Tooling API and the
sandbox's own control routes. Mixed into SalesforceApp (app.py)."""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from werkzeug.datastructures import MultiDict

from crmsync.sandbox.common import sf_id

from .schema import (
    Field,
    describe_field,
    field_from_metadata,
    format_datetime,
    object_summary,
    object_urls,
    parse_datetime,
)
from .soql import CompiledQuery, compile_query
from .store import Row, Table, UnknownObject
from .wire import Locator, Req, Resp, SfError, batch_size, record_body

if TYPE_CHECKING:
    from .server import SalesforceSandbox
    from .store import Store

VERSION_LABELS = {
    "55.0": "Summer '22", "56.0": "Winter '23", "57.0": "Spring '23", "58.0": "Summer '23",
    "59.0": "Winter '24", "60.0": "Spring '24", "61.0": "Summer '24", "62.0": "Winter '25",
}
MAX_LOCATORS = 1000
MAX_LOCATOR_ROWS = 5_000_000  # rows held by open query cursors, so memory stays bounded
_ISO_TZ = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)$")


LONG_TEXT_BATCH = 200


def _long_text_cap(query: CompiledQuery) -> int:
    """At most 200 rows per page when the query selects two or more custom long text fields:
    "If the SOQL statement selects two or more custom fields of type long text, the batch
    size can't be greater than 200 records" (SOQL and SOSL Reference, "Change the Batch Size
    in Queries"). Long text: a textarea longer than 255 (describe type "textarea")."""
    long_text = {
        p.field.name
        for p in query.paths
        if p.field.custom and p.field.type == "textarea" and p.field.length > 255
    }
    return LONG_TEXT_BATCH if len(long_text) >= 2 else 2000


class ReadHandlers:
    """Handlers that read the org (and the few that change its schema or jobs)."""

    sb: SalesforceSandbox
    store: Store
    locators: OrderedDict[str, Locator]
    describe_versions: dict[tuple[str, str | None], tuple[str, datetime]]
    _loc_n: int
    _field_n: int

    if TYPE_CHECKING:  # provided by WriteHandlers (writes.py); declared for type checkers only

        def _save(self, t: Table, row: Row | None, values: dict[str, Any], op: str) -> str: ...

        def _delete(self, t: Table, row: Row) -> None: ...

    # ------------------------------------------------------------ discovery
    def h_versions(self, req: Req) -> Resp:
        return Resp(200, [
            {"label": label, "url": f"/services/data/v{v}", "version": v}
            for v, label in VERSION_LABELS.items()
        ])

    def h_resources(self, req: Req, v: str) -> Resp:
        base = f"/services/data/v{v}"
        names = ("sobjects", "query", "queryAll", "limits", "composite", "jobs", "tooling", "search")
        return Resp(200, {n: f"{base}/{n}" for n in names})

    def h_limits(self, req: Req, v: str) -> Resp:
        used, cap = self.sb.usage.snapshot()
        jobs = len(self.sb.bulk.jobs)
        return Resp(200, {
            "DailyApiRequests": {"Max": cap, "Remaining": max(cap - used, 0)},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000 - jobs},
            "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
            "DataStorageMB": {"Max": 1024, "Remaining": 1024},
        })

    def h_describe_global(self, req: Req, v: str) -> Resp:
        return Resp(200, {
            "encoding": "UTF-8",
            "maxBatchSize": 200,
            "sobjects": [object_summary(t.sobj, v) for t in self.store.tables.values()],
        })

    def h_sobject_basic(self, req: Req, v: str, obj: str) -> Resp:
        t = self._table(obj)
        return Resp(200, {"objectDescribe": object_summary(t.sobj, v), "recentItems": []})

    def h_describe(self, req: Req, v: str, obj: str) -> Resp:
        t = self._table(obj)
        body = object_summary(t.sobj, v)
        body["fields"] = [self._describe_field(t, f) for f in t.visible_fields() if self.store.readable(t, f)]
        body["childRelationships"] = [
            {
                "cascadeDelete": False,
                "childSObject": child.name,
                "deprecatedAndHidden": False,
                "field": f.name,
                "relationshipName": _plural(child.name) if f.name in ("AccountId", "OpportunityId", "WhoId", "WhatId", "ContactId") else None,
                "restrictedDelete": False,
            }
            for child in self.store.tables.values()
            for f in child.visible_fields()
            if f.type == "reference" and t.name in f.reference_to and not f.name.endswith("ById")
        ]
        body["recordTypeInfos"] = []
        body["urls"] = object_urls(t.name, v)
        if self._not_modified(req, t.name, body):
            return Resp(304)
        return Resp(200, body)

    def _not_modified(self, req: Req, obj: str, body: dict[str, Any]) -> bool:
        """If-Modified-Since on sObject Describe, as Salesforce documents it: "When using the
        If-Modified-Since header, if no available object's metadata has changed since the
        provided date, a 304 Not Modified status code is returned with no response body"
        (REST API Developer Guide, "sObject Describe"; "Get Object Metadata Changes").

        The object's metadata (as this user sees it: field-level security included) changed
        when its describe last came out different; the first describe of an org's object
        dates from the epoch. A date that does not parse is ignored (a full answer).
        """
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        key = (obj, req.user)
        seen = self.describe_versions.get(key)
        if seen is None:
            seen = (digest, datetime.fromtimestamp(0, UTC))
        elif seen[0] != digest:
            seen = (digest, self.sb.clock())
        self.describe_versions[key] = seen
        since = req.headers.get("If-Modified-Since")
        if not since:
            return False
        try:
            when = parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return seen[1] <= when

    def _describe_field(self, t: Table, f: Field) -> dict[str, Any]:
        """A field as the request's user sees it: read-only where they may only read it."""
        out = describe_field(f)
        if not self.store.editable(t, f):
            out["createable"] = out["updateable"] = False
        return out

    # ------------------------------------------------------------ query
    def h_query(self, req: Req, v: str) -> Resp:
        text = req.args.get("q")
        if not text:
            raise SfError(400, "MALFORMED_QUERY", "A query string has to be specified")
        include_deleted = req.path.endswith("/queryAll")
        query = compile_query(self.store, text)
        self._query_timeout(req, query)
        rows = query.run(include_deleted)
        if query.count_only:
            return Resp(200, {"totalSize": len(rows), "done": True, "records": []})
        if query.aggregates:
            return Resp(200, {"totalSize": 1, "done": True, "records": [query.aggregate_record(rows)]})
        batch = min(batch_size(req.headers), _long_text_cap(query))
        loc_id = None
        if len(rows) > batch:
            loc_id = self._new_locator(Locator(query, rows, batch, include_deleted))
        return self._page(v, loc_id, query, rows, 0, batch, include_deleted)

    def h_query_more(self, req: Req, v: str, loc: str) -> Resp:
        loc_id, _, offset = loc.rpartition("-")
        locator = self.locators.get(loc_id)
        if locator is None or not offset.isdigit():
            raise SfError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        self.locators.move_to_end(loc_id)
        batch = min(batch_size(req.headers, default=locator.batch), _long_text_cap(locator.query))
        return self._page(v, loc_id, locator.query, locator.rows, int(offset), batch, locator.include_deleted)

    def _page(
        self, v: str, loc_id: str | None, query: CompiledQuery, rows: list[Row], start: int, batch: int, include_deleted: bool
    ) -> Resp:
        """One page of query results, its JSON built directly from the rows."""
        render = query.json_renderer(v)
        budget = self.sb.query_page_bytes
        parts: list[str] = []
        size = 0
        for r in rows[start : start + batch]:
            part = render(r)
            if budget and parts and size + len(part) > budget:
                break  # "smaller if you ... include blob fields": a big page ends early
            parts.append(part)
            size += len(part) + 1
        end = start + len(parts)
        done = end >= len(rows)
        if not done and loc_id is None:  # cut by size: the rest needs a cursor too
            loc_id = self._new_locator(Locator(query, rows, batch, include_deleted))
        head = f'{{"totalSize":{len(rows)},"done":{"true" if done else "false"},'
        if not done:
            # queryAll continues at /query/ too: "Although the nextRecordsUrl has query in the
            # URL, it still provides the remaining results from the initial QueryAll request"
            # (REST API guide, QueryAll; api-facts §10). The locator keeps IsDeleted rows.
            head += f'"nextRecordsUrl":"/services/data/v{v}/query/{loc_id}-{end}",'
        text = head + '"records":[' + ",".join(parts) + "]}"
        return Resp(200, raw=text.encode("ascii"))

    def _new_locator(self, locator: Locator) -> str:
        """Keep a query's snapshot for its next pages; the oldest go first (like idle cursors)."""
        self._loc_n += 1
        loc_id = sf_id("01g", self._loc_n)
        self.locators[loc_id] = locator
        held = sum(len(x.rows) for x in self.locators.values())
        while len(self.locators) > 1 and (len(self.locators) > MAX_LOCATORS or held > MAX_LOCATOR_ROWS):
            _, old = self.locators.popitem(last=False)
            held -= len(old.rows)
        return loc_id

    def _query_timeout(self, req: Req, query: CompiledQuery) -> None:
        for rule in req.fired:
            if rule.kind != "query_timeout":
                continue
            days = rule.get("window_days")
            if days is not None and query.stamp_low is not None:
                low = parse_datetime(query.stamp_low[0])
                high = parse_datetime(query.stamp_high[0]) if query.stamp_high else self.store.now()
                if high - low <= timedelta(days=float(days)):
                    continue  # a narrow enough SystemModstamp window runs
            raise SfError(400, "QUERY_TIMEOUT", str(rule.get("message") or "Your query request was running for too long."))

    # ------------------------------------------------------------ single records
    def h_create(self, req: Req, v: str, obj: str) -> Resp:
        t = self._table(obj)
        values = record_body(req.json())
        new_id = self._save(t, None, values, "create")
        return Resp(201, {"id": new_id, "success": True, "errors": []})

    def h_row(self, req: Req, v: str, obj: str, id: str) -> Resp:  # noqa: A002
        t = self._table(obj)
        row = self.store.get_row(t, id)
        if row is None or t.is_deleted(row):
            if req.method == "DELETE" and row is not None:
                raise SfError(404, "ENTITY_IS_DELETED", "entity is deleted")
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
        if req.method == "GET":
            return Resp(200, self._record_json(t, row, v, req.args.get("fields")))
        if req.method == "DELETE":
            self._delete(t, row)
            return Resp(204)
        self._save(t, row, record_body(req.json()), "update")
        return Resp(204)

    def h_ext(self, req: Req, v: str, obj: str, field: str, value: str) -> Resp:
        t = self._table(obj)
        f = self._visible_field(t, field)
        # The single-record upsert does accept Id (jsforce PR #998; api-facts §11);
        # the collections upsert does not (writes.py).
        if f is None or not (f.external_id or f.name == "Id"):
            raise SfError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {field}")
        matches = self._ext_rows(t, f.name, value)
        if len(matches) > 1:
            urls = [f"/services/data/v{v}/sobjects/{t.name}/{r[0]}" for r in matches]
            return Resp(300, urls)
        if req.method == "GET":
            if not matches:
                raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
            return Resp(200, self._record_json(t, matches[0], v, req.args.get("fields")))
        if req.method == "DELETE":
            if not matches:
                raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
            self._delete(t, matches[0])
            return Resp(204)
        values = record_body(req.json())
        if matches:
            self._save(t, matches[0], values, "upsert")
            return Resp(200, {"id": matches[0][0], "success": True, "errors": [], "created": False})
        if f.name == "Id":
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
        new_id = self._save(t, None, {**values, f.name: value}, "upsert")
        return Resp(201, {"id": new_id, "success": True, "errors": [], "created": True})

    def _ext_rows(self, t: Table, field_name: str, value: Any) -> list[Row]:
        if field_name == "Id":
            row = self.store.get_row(t, str(value))
            return [row] if row is not None and not t.is_deleted(row) else []
        col = t.cols[field_name.lower()]
        rows = [t.rows[i] for i in sorted(t.ext_lookup(col, value)) if i in t.rows]
        return [r for r in rows if not t.is_deleted(r)]

    def _record_json(self, t: Table, row: Row, v: str, fields: str | None) -> dict[str, Any]:
        wanted = [f for f in t.visible_fields() if self.store.readable(t, f)]
        if fields:
            wanted = []
            for name in fields.split(","):
                f = self._visible_field(t, name.strip())
                if f is None:
                    raise SfError(400, "INVALID_FIELD", f"No such column '{name.strip()}' on sobject of type {t.name}")
                wanted.append(f)
        rec: dict[str, Any] = {"attributes": {"type": t.name, "url": f"/services/data/v{v}/sobjects/{t.name}/{row[0]}"}}
        rec.update(self.store.record(t, row, wanted))
        return rec

    # ------------------------------------------------------------ replication
    def h_updated(self, req: Req, v: str, obj: str) -> Resp:
        t = self._table(obj)
        start, end = self._window(req)
        return Resp(200, {"ids": self.store.updated_ids(t, start, end), "latestDateCovered": end})

    def h_deleted(self, req: Req, v: str, obj: str) -> Resp:
        t = self._table(obj)
        start, end = self._window(req)
        earliest = _floor_minute(t.earliest_deleted)
        return Resp(200, {
            "deletedRecords": self.store.deleted_records(t, start, end),
            "earliestDateAvailable": earliest,
            "latestDateCovered": end,
        })

    def _window(self, req: Req) -> tuple[str, str]:
        bounds = []
        for name in ("start", "end"):
            raw = req.args.get(name)
            if not raw or not _ISO_TZ.match(raw):
                raise SfError(400, "MALFORMED_QUERY", f"{name}: Invalid date/time format: {raw}")
            bounds.append(parse_datetime(raw).replace(second=0, microsecond=0))
        start, end = bounds
        now = self.store.now().replace(second=0, microsecond=0)
        if end < start:
            raise SfError(400, "INVALID_REPLICATION_DATE", "end date must not be before start date")
        if start < now - timedelta(days=30):
            raise SfError(400, "INVALID_REPLICATION_DATE", "start date cannot be more than 30 days ago")
        return format_datetime(start), format_datetime(min(end, now))

    # ------------------------------------------------------------ bulk 2.0
    def h_bulk_create(self, req: Req, v: str) -> Resp:
        body = req.json() or {}
        query_text = body.get("query") or ""
        req.args = MultiDict({"q": query_text})
        job = self.sb.bulk.create(body, v)
        self._query_timeout(req, job.query)
        info = self.sb.bulk.info(job)
        for k in ("jobType", "numberRecordsProcessed", "retries", "totalProcessingTime"):
            info.pop(k, None)
        return Resp(200, info)

    def h_bulk_list(self, req: Req, v: str) -> Resp:
        jobs = [self.sb.bulk.info(j) for j in self.sb.bulk.jobs.values()]
        return Resp(200, {"done": True, "records": jobs, "nextRecordsUrl": None})

    def h_bulk_poll(self, req: Req, v: str, job: str) -> Resp:
        j = self.sb.bulk.get(job)
        for rule in req.fired:
            if rule.kind == "bulk_job_state":
                j.forced_state = str(rule.get("state") or "Failed")
                j.error_message = rule.get("message")
        return Resp(200, self.sb.bulk.info(j, poll=True))

    def h_bulk_abort(self, req: Req, v: str, job: str) -> Resp:
        j = self.sb.bulk.get(job)
        if (req.json() or {}).get("state") != "Aborted":
            raise SfError(400, "INVALIDJOBSTATE", "A query job can only be set to Aborted")
        self.sb.bulk.abort(j)
        return Resp(200, self.sb.bulk.info(j))

    def h_bulk_delete(self, req: Req, v: str, job: str) -> Resp:
        self.sb.bulk.delete(self.sb.bulk.get(job))
        return Resp(204)

    def h_bulk_results(self, req: Req, v: str, job: str) -> Resp:
        j = self.sb.bulk.get(job)
        max_records = req.args.get("maxRecords")
        text, n, locator = self.sb.bulk.results(j, req.args.get("locator"), int(max_records) if max_records and max_records.isdigit() else None)
        content_type = "text/csv;charset=UTF-8"
        for rule in req.fired:
            if rule.kind == "bulk_charset":  # X2: a lying or missing charset; the bytes stay UTF-8
                charset = rule.get("charset")
                content_type = f"text/csv;charset={charset}" if charset else "text/csv"
        return Resp(200, text, {"Sforce-NumberOfRecords": str(n), "Sforce-Locator": locator}, content_type=content_type)

    # ------------------------------------------------------------ tooling
    def h_tooling(self, req: Req, v: str, obj: str) -> Resp:
        if obj != "CustomField":
            raise SfError(404, "NOT_FOUND", f"The requested resource does not exist: tooling sobject {obj} is not emulated")
        body = req.json() or {}
        full = str(body.get("FullName") or "")
        obj_name, _, name = full.partition(".")
        if not re.match(r"^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*__c$", name):
            raise SfError(400, "FIELD_INTEGRITY_EXCEPTION", f"The field name {name or full!r} is not valid: use Object.Name__c")
        table_name = "Task" if obj_name.lower() in ("activity", "event") else obj_name
        try:
            t = self.store.table(table_name)
        except UnknownObject:
            raise SfError(400, "INVALID_TYPE", f"Cannot find object: {obj_name}") from None
        meta = dict(body.get("Metadata") or {})
        if table_name == "Task" and (meta.get("externalId") or meta.get("unique")):
            # Whether every org lets an Activity custom field be an External ID is not
            # established (api-facts §12): the knob plays an org that refuses, or one
            # whose field ends up plain (describe then says externalId false).
            mode = self.sb.activity_external_id
            if mode == "refused":
                raise SfError(
                    400, "FIELD_INTEGRITY_EXCEPTION",
                    f"External ID and Unique are not available for the Activity field {name}",
                )
            if mode == "plain":
                meta.pop("externalId", None)
                meta.pop("unique", None)
        try:
            f = field_from_metadata(name, meta)
        except ValueError as e:
            raise SfError(400, "FIELD_INTEGRITY_EXCEPTION", str(e)) from None
        if t.field(name) is not None:
            raise SfError(400, "DUPLICATE_DEVELOPER_NAME", f"There is already a field named {name[:-3]} on {obj_name}.")
        self.store.add_field(t.name, f)
        self._field_n += 1
        return Resp(201, {"id": sf_id("00N", self._field_n), "success": True, "errors": [], "warnings": [], "infos": []})

    # ------------------------------------------------------------ sandbox control
    def h_sb_requests(self, req: Req) -> Resp:
        return Resp(200, self.sb.requests.counts())

    def h_sb_reset(self, req: Req) -> Resp:
        self.sb.requests.reset()
        return Resp(200, {"ok": True})

    def h_sb_records(self, req: Req, obj: str) -> Resp:
        return Resp(200, self.sb.records(obj))

    def h_sb_faults(self, req: Req) -> Resp:
        if req.method == "POST":
            self.sb.faults.load(req.body.decode("utf-8") or None)
        rules = [{"kind": r.kind, "route": r.route, "method": r.method, "seen": r.seen, "fired": r.fired, **r.params} for r in self.sb.faults.rules]
        return Resp(200, {"rules": rules})

    def h_sb_limits(self, req: Req) -> Resp:
        body = req.json() or {}
        self.sb.usage.set(body.get("used"), body.get("max"))
        used, cap = self.sb.usage.snapshot()
        return Resp(200, {"used": used, "max": cap})

    # ------------------------------------------------------------ helpers
    def _visible_field(self, t: Table, name: str) -> Field | None:
        """A field the request's user may see (field-level security hides the rest)."""
        f = t.field(name)
        return f if f is not None and self.store.readable(t, f) else None

    def _table(self, obj: str) -> Table:
        try:
            return self.store.table(obj)
        except UnknownObject:
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist") from None


def _plural(name: str) -> str:
    return name[:-1] + "ies" if name.endswith("y") else name + "s"


def _floor_minute(stamp: str) -> str:
    return stamp[:17] + "00.000+0000" if stamp else stamp
