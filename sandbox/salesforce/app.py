"""The emulator's WSGI application: routing, auth, limits, faults, and the REST handlers.

Each request is matched to a short route name (the names `GET /_sandbox/requests`
counts and fault rules select; listed in sandbox/salesforce/__init__.py), then:

1. faults that act before anything else: latency, drop_connection (before);
2. for /services/data routes: expire_session, the session check (401
   INVALID_SESSION_ID), quota, concurrent_limit, the daily limit (403
   REQUEST_LIMIT_EXCEEDED), then counting the call;
3. status / rate_limit faults, rendered in Salesforce's shape;
4. the handler; `Sforce-Limit-Info: api-usage=used/max` on every
   /services/data response.

Handlers take a `Req` and return a `Resp`, so `/composite` can run its
subrequests through the same code without a second HTTP round trip.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from werkzeug.datastructures import Headers, MultiDict
from werkzeug.wrappers import Request, Response

from sandbox.common import FaultRule, sf_id

from .auth import soap_fault_xml
from .schema import (
    describe_field,
    field_from_metadata,
    format_datetime,
    object_summary,
    object_urls,
    parse_datetime,
)
from .soql import CompiledQuery, SoqlError, compile_query
from .store import Row, Table, UnknownObject, WriteError

if TYPE_CHECKING:
    from .server import SalesforceSandbox

log = logging.getLogger(__name__)
JSON_TYPE = "application/json;charset=UTF-8"
VERSION_LABELS = {
    "55.0": "Summer '22", "56.0": "Winter '23", "57.0": "Spring '23", "58.0": "Summer '23",
    "59.0": "Winter '24", "60.0": "Spring '24", "61.0": "Summer '24", "62.0": "Winter '25",
}
MAX_COLLECTION = 200
MAX_LOCATORS = 1000
MAX_LOCATOR_ROWS = 5_000_000  # rows held by open query cursors, so memory stays bounded


class SfError(Exception):
    """An error answered as Salesforce's JSON array."""

    def __init__(self, status: int, code: str, message: str, fields: Iterable[str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields = list(fields) if fields is not None else None

    def resp(self) -> Resp:
        body: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            body["fields"] = self.fields
        return Resp(self.status, [body])


@dataclass
class Req:
    method: str
    path: str
    args: MultiDict[str, str]
    headers: Headers
    body: bytes = b""
    fired: list[FaultRule] = field(default_factory=list)

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError as e:
            raise SfError(400, "JSON_PARSER_ERROR", f"Unexpected character: {e}") from None


@dataclass
class Resp:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON_TYPE
    raw: bytes | None = None

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body, separators=(",", ":")).encode("utf-8")


@dataclass
class Locator:
    query: CompiledQuery
    rows: list[Row]
    batch: int
    include_deleted: bool


Handler = Callable[..., Resp]
_V = r"^/services/data/v(?P<v>\d+\.\d)"


class SalesforceApp:
    """WSGI callable; state lives on the SalesforceSandbox it serves."""

    def __init__(self, sb: SalesforceSandbox) -> None:
        self.sb = sb
        self.store = sb.store
        self.locators: OrderedDict[str, Locator] = OrderedDict()
        self._loc_n = 0
        self._field_n = 0
        self._lock = threading.Lock()
        self.in_flight = 0
        self.routes: list[tuple[frozenset[str], re.Pattern[str], str, str, Handler]] = []
        self._build_routes()

    # ------------------------------------------------------------ routing
    def _route(self, methods: str, pattern: str, name: str, kind: str, handler: Handler) -> None:
        self.routes.append((frozenset(methods.split()), re.compile(pattern + "$"), name, kind, handler))

    def _build_routes(self) -> None:
        r = self._route
        r("POST", r"^/services/Soap/u/(?P<v>\d+\.\d)(?:/[^/]*)?", "login", "auth", self.h_login)
        r("POST", r"^/services/oauth2/token", "token", "auth", self.h_token)
        r("GET", r"^/services/data", "versions", "open", self.h_versions)
        r("GET", _V, "resources", "api", self.h_resources)
        r("GET", _V + r"/query", "query", "api", self.h_query)
        r("GET", _V + r"/queryAll", "query_all", "api", self.h_query)
        r("GET", _V + r"/(?:query|queryAll)/(?P<loc>[^/]+)", "query_more", "api", self.h_query_more)
        r("GET", _V + r"/limits", "limits", "api", self.h_limits)
        r("GET", _V + r"/sobjects", "describe_global", "api", self.h_describe_global)
        r("GET", _V + r"/sobjects/(?P<obj>\w+)", "sobject_basic", "api", self.h_sobject_basic)
        r("POST", _V + r"/sobjects/(?P<obj>\w+)", "sobject_create", "api", self.h_create)
        r("GET", _V + r"/sobjects/(?P<obj>\w+)/describe", "sobject_describe", "api", self.h_describe)
        r("GET", _V + r"/sobjects/(?P<obj>\w+)/updated", "sobject_updated", "api", self.h_updated)
        r("GET", _V + r"/sobjects/(?P<obj>\w+)/deleted", "sobject_deleted", "api", self.h_deleted)
        r("GET PATCH DELETE", _V + r"/sobjects/(?P<obj>\w+)/(?P<id>\w+)", "sobject_row", "api", self.h_row)
        r("GET PATCH DELETE", _V + r"/sobjects/(?P<obj>\w+)/(?P<field>\w+)/(?P<value>[^/]+)", "sobject_ext", "api", self.h_ext)
        r("POST", _V + r"/composite", "composite", "api", self.h_composite)
        r("POST PATCH DELETE", _V + r"/composite/sobjects", "composite_sobjects", "api", self.h_collection)
        r("GET POST", _V + r"/composite/sobjects/(?P<obj>\w+)", "composite_sobjects_batch_read", "api", self.h_collection_read)
        r("PATCH", _V + r"/composite/sobjects/(?P<obj>\w+)/(?P<field>\w+)", "composite_sobjects_upsert", "api", self.h_collection_upsert)
        r("POST", _V + r"/jobs/query", "bulk2_query_create", "api", self.h_bulk_create)
        r("GET", _V + r"/jobs/query", "bulk2_query_list", "api", self.h_bulk_list)
        r("GET", _V + r"/jobs/query/(?P<job>\w+)", "bulk2_query_poll", "api", self.h_bulk_poll)
        r("PATCH", _V + r"/jobs/query/(?P<job>\w+)", "bulk2_query_abort", "api", self.h_bulk_abort)
        r("DELETE", _V + r"/jobs/query/(?P<job>\w+)", "bulk2_query_delete", "api", self.h_bulk_delete)
        r("GET", _V + r"/jobs/query/(?P<job>\w+)/results", "bulk2_query_results", "api", self.h_bulk_results)
        r("POST", _V + r"/tooling/sobjects/(?P<obj>\w+)", "tooling", "api", self.h_tooling)
        r("GET", r"^/_sandbox/requests", "_sandbox", "sandbox", self.h_sb_requests)
        r("POST", r"^/_sandbox/reset", "_sandbox", "sandbox", self.h_sb_reset)
        r("GET", r"^/_sandbox/records/(?P<obj>\w+)", "_sandbox", "sandbox", self.h_sb_records)
        r("GET POST", r"^/_sandbox/faults", "_sandbox", "sandbox", self.h_sb_faults)
        r("POST", r"^/_sandbox/limits", "_sandbox", "sandbox", self.h_sb_limits)

    def match(self, method: str, path: str) -> tuple[str, str, Handler, dict[str, str]]:
        allowed: set[str] = set()
        for methods, rx, name, kind, handler in self.routes:
            m = rx.match(path)
            if m is None:
                continue
            if method in methods:
                return name, kind, handler, m.groupdict()
            allowed |= methods
        if allowed:
            raise SfError(
                405, "METHOD_NOT_ALLOWED",
                f"HTTP Method '{method}' not allowed. Allowed are {','.join(sorted(allowed))}",
            )
        raise SfError(404, "NOT_FOUND", "The requested resource does not exist")

    # ------------------------------------------------------------ WSGI
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        path = request.path.rstrip("/") or "/"
        req = Req(request.method, path, request.args, request.headers, request.get_data())
        drop: FaultRule | None = None
        try:
            route, kind, handler, params = self.match(req.method, path)
        except SfError as e:
            resp = e.resp()
        else:
            if kind == "sandbox":
                resp = self._call(handler, req, params)
            else:
                self.sb.requests.record(req.method, route)
                with self._lock:
                    self.in_flight += 1
                try:
                    resp, drop = self._guarded(req, route, kind, handler, params)
                finally:
                    with self._lock:
                        self.in_flight -= 1
        if path.startswith("/services/data"):
            resp.headers["Sforce-Limit-Info"] = self.sb.usage.header()
        return self._respond(resp, drop, environ, start_response)

    def _respond(
        self, resp: Resp, drop: FaultRule | None, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        payload = resp.payload()
        sock = environ.get("werkzeug.socket")
        if drop is not None and int(drop.get("bytes", 0) or 0) <= 0:
            _hang_up(sock)
            raise ConnectionResetError("sandbox fault: drop_connection")
        response = Response(payload, status=resp.status, content_type=resp.content_type)
        for k, v in resp.headers.items():
            response.headers[k] = v
        if drop is None:
            return response(environ, start_response)
        cut = int(drop.get("bytes", 0))
        start_response(response.status, list(response.headers.items()))
        return _truncated(payload, cut, sock)

    def _guarded(
        self, req: Req, route: str, kind: str, handler: Handler, params: dict[str, str]
    ) -> tuple[Resp, FaultRule | None]:
        fired = self.sb.faults.fire(route, req.method)
        req.fired = fired
        drop = next((r for r in fired if r.kind == "drop_connection"), None)
        for rule in fired:
            if rule.kind == "latency":
                self.sb.sleep_ms(float(rule.get("ms", 0) or 0))
            elif rule.kind == "expire_locators":
                self.locators.clear()
            elif rule.kind == "mutate":
                self._mutate(rule)
        if drop is not None and not drop.get("apply", False) and int(drop.get("bytes", 0) or 0) <= 0:
            return Resp(500), drop  # dropped before the request is processed
        if kind == "api":
            refusal = self._admit(req, fired)
            if refusal is not None:
                return refusal, None
        for rule in fired:
            if rule.kind in ("status", "rate_limit", "request_limit"):
                return self._fault_response(rule, kind, route), drop
        return self._call(handler, req, params), drop

    def _admit(self, req: Req, fired: list[FaultRule]) -> Resp | None:
        """Session, quota and limits for a /services/data call; None = go ahead (counted)."""
        if any(r.kind == "expire_session" for r in fired):
            self.sb.auth.expire_all()
        if not self.sb.auth.valid(_bearer(req.headers)):
            return SfError(401, "INVALID_SESSION_ID", "Session expired or invalid").resp()
        for rule in fired:
            if rule.kind == "quota":
                self.sb.usage.set(rule.get("used"), rule.get("max"))
        for rule in fired:
            if rule.kind == "concurrent_limit" and self.in_flight > int(rule.get("limit", 0) or 0):
                return SfError(
                    403, "REQUEST_LIMIT_EXCEEDED",
                    "ConcurrentRequests (Concurrent API Requests) Limit exceeded.",
                ).resp()
        if not self.sb.usage.take():
            return SfError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.").resp()
        return None

    def _mutate(self, rule: FaultRule) -> None:
        """Fault kind mutate: change the org while a client pages (P3/P10), as another user would."""
        obj, id_ = str(rule.get("object") or ""), rule.get("id")
        fields = dict(rule.get("fields") or {})
        with self.store.lock:
            if id_ and rule.get("delete"):
                self.sb.delete(obj, str(id_))
            elif id_:
                self.sb.update(obj, str(id_), fields)
            else:
                self.sb.create(obj, fields)

    def _fault_response(self, rule: FaultRule, kind: str, route: str) -> Resp:
        if rule.kind in ("rate_limit", "request_limit"):
            status = int(rule.get("status", 403))
            code = str(rule.get("errorCode") or rule.get("code") or "REQUEST_LIMIT_EXCEEDED")
            message = str(rule.get("message") or "TotalRequests Limit exceeded.")
        else:
            status = int(rule.get("status", 500))
            default = {503: "SERVER_UNAVAILABLE", 502: "BAD_GATEWAY", 401: "INVALID_SESSION_ID"}.get(status, "UNKNOWN_EXCEPTION")
            code = str(rule.get("errorCode") or rule.get("code") or default)
            message = str(rule.get("message") or _STATUS_MESSAGES.get(status, "An unexpected error occurred."))
        headers = {str(k): str(v) for k, v in (rule.get("headers") or {}).items()}
        if route == "login":
            return Resp(500 if status < 500 else status, soap_fault_xml(code, message), headers, "text/xml;charset=UTF-8")
        if route == "token":
            return Resp(status, {"error": code.lower(), "error_description": message}, headers)
        resp = SfError(status, code, message).resp()
        resp.headers.update(headers)
        return resp

    def _call(self, handler: Handler, req: Req, params: dict[str, str]) -> Resp:
        try:
            with self.store.lock:
                return handler(req, **params)
        except SfError as e:
            return e.resp()
        except SoqlError as e:
            return SfError(400, e.code, e.render(_query_text(req))).resp()
        except WriteError as e:
            return SfError(e.status, e.code, e.message, e.fields or None).resp()
        except UnknownObject as e:
            return SfError(404, "NOT_FOUND", f"The requested resource does not exist ({e.args[0]})").resp()
        except Exception as e:  # an emulator bug: answer like Salesforce's 500, keep the traceback
            log.exception("salesforce sandbox: %s %s failed", req.method, req.path)
            return SfError(500, "UNKNOWN_EXCEPTION", f"crmsync sandbox error: {type(e).__name__}: {e}").resp()

    # ------------------------------------------------------------ auth endpoints
    def h_login(self, req: Req, v: str) -> Resp:
        status, xml = self.sb.auth.soap_login(req.body, self.sb.url, v)
        return Resp(status, xml, content_type="text/xml;charset=UTF-8")

    def h_token(self, req: Req) -> Resp:
        form = {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items()}
        status, body = self.sb.auth.oauth_token(form, req.headers.get("Authorization"), self.sb.url)
        return Resp(status, body)

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
        body["fields"] = [describe_field(f) for f in t.visible_fields()]
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
        return Resp(200, body)

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
        batch = _batch_size(req.headers)
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
        batch = _batch_size(req.headers, default=locator.batch)
        return self._page(v, loc_id, locator.query, locator.rows, int(offset), batch, locator.include_deleted)

    def _page(
        self, v: str, loc_id: str | None, query: CompiledQuery, rows: list[Row], start: int, batch: int, include_deleted: bool
    ) -> Resp:
        """One page of query results, its JSON built directly from the rows."""
        chunk = rows[start : start + batch]
        end = start + len(chunk)
        done = end >= len(rows)
        head = f'{{"totalSize":{len(rows)},"done":{"true" if done else "false"},'
        if not done:
            kind = "queryAll" if include_deleted else "query"
            head += f'"nextRecordsUrl":"/services/data/v{v}/{kind}/{loc_id}-{end}",'
        render = query.json_renderer(v)
        text = head + '"records":[' + ",".join([render(r) for r in chunk]) + "]}"
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
        values = _record_body(req.json())
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
        self._save(t, row, _record_body(req.json()), "update")
        return Resp(204)

    def h_ext(self, req: Req, v: str, obj: str, field: str, value: str) -> Resp:
        t = self._table(obj)
        f = t.field(field)
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
        values = _record_body(req.json())
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
        wanted = t.visible_fields()
        if fields:
            wanted = []
            for name in fields.split(","):
                f = t.field(name.strip())
                if f is None:
                    raise SfError(400, "INVALID_FIELD", f"No such column '{name.strip()}' on sobject of type {t.name}")
                wanted.append(f)
        rec: dict[str, Any] = {"attributes": {"type": t.name, "url": f"/services/data/v{v}/sobjects/{t.name}/{row[0]}"}}
        rec.update(self.store.record(t, row, wanted))
        return rec

    # ------------------------------------------------------------ writes (shared)
    def _save(self, t: Table, row: Row | None, values: dict[str, Any], op: str) -> str:
        """Validate, check reject_write faults, apply. Returns the Id; raises WriteError."""
        creating = row is None
        cols = self.store.prepare(t, values, creating=creating, system=False)
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
            _check_size(ids)
            return Resp(200, self._run_batch([(None, i) for i in ids], all_or_none, self._delete_one))
        body = req.json() or {}
        records = body.get("records") or []
        _check_size(records)
        op = self._create_one if req.method == "POST" else self._update_one
        return Resp(200, self._run_batch([(r, None) for r in records], bool(body.get("allOrNone")), op))

    def h_collection_upsert(self, req: Req, v: str, obj: str, field: str) -> Resp:
        t = self._table(obj)
        f = t.field(field)
        if f is None or not (f.external_id or f.name == "Id"):
            raise SfError(400, "INVALID_FIELD", f"Field name provided, {field} is not an External ID or indexed field for {t.name}")
        body = req.json() or {}
        records = body.get("records") or []
        _check_size(records)

        def upsert(rec: dict[str, Any], _: Any, dry: bool) -> dict[str, Any] | Callable[[], dict[str, Any]]:
            rtype = (rec.get("attributes") or {}).get("type", t.name)
            if rtype.lower() != t.name.lower():
                raise WriteError("INVALID_TYPE", f"The sObject type {rtype} does not match the upsert type {t.name}")
            value = next((val for k, val in rec.items() if k.lower() == f.name.lower()), None)
            if value in (None, ""):
                raise WriteError("MISSING_ARGUMENT", f"{f.name} not specified", [f.name])
            matches = self._ext_rows(t, f.name, value)
            if len(matches) > 1:
                raise WriteError("DUPLICATE_EXTERNAL_ID", f"{f.name}: more than one record found for external id field: {[m[0] for m in matches]}", [f.name])
            values = _record_body(rec)
            row = matches[0] if matches else None
            if row is None and f.name == "Id":
                raise WriteError("NOT_FOUND", "The requested resource does not exist", ["Id"])
            if row is not None:
                values = {k: val for k, val in values.items() if k.lower() != "id"}
            cols = self.store.prepare(t, values, creating=row is None, system=False)
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
        values = _record_body(rec)
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
        values = _record_body(rec)
        cols = self.store.prepare(t, values, creating=False, system=False)
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
        sub = Req(method, path, MultiDict(parse_qs(parts.query)), sub_headers, b"" if body is None else json.dumps(body).encode())
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
        try:
            f = field_from_metadata(name, body.get("Metadata") or {})
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
    def _table(self, obj: str) -> Table:
        try:
            return self.store.table(obj)
        except UnknownObject:
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist") from None


_STATUS_MESSAGES = {
    500: "An unexpected error occurred. Please include this ErrorId if you contact support: 0000000-0 (sandbox)",
    502: "Bad Gateway",
    503: "Server temporarily unavailable; please retry later.",
}
_ISO_TZ = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)$")


def _truncated(payload: bytes, cut: int, sock: Any) -> Iterator[bytes]:
    yield payload[:cut]
    _hang_up(sock)
    raise ConnectionResetError("sandbox fault: drop_connection")


def _hang_up(sock: Any) -> None:
    """Close the TCP connection under the request (the client sees a reset/EOF)."""
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _bearer(headers: Headers) -> str | None:
    value = headers.get("Authorization") or ""
    if value.lower().startswith(("bearer ", "oauth ")):
        return value.split(None, 1)[1].strip()
    return None


def _batch_size(headers: Headers, default: int = 2000) -> int:
    opts = headers.get("Sforce-Query-Options") or ""
    m = re.search(r"batchSize\s*=\s*(\d+)", opts)
    if not m:
        return default
    return max(200, min(2000, int(m.group(1))))


def _record_body(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise SfError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
    return {k: v for k, v in data.items() if k != "attributes"}


def _check_size(items: list[Any]) -> None:
    if len(items) > MAX_COLLECTION:
        raise SfError(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call")


def _query_text(req: Req) -> str:
    return req.args.get("q") or ""


def _plural(name: str) -> str:
    return name[:-1] + "ies" if name.endswith("y") else name + "s"


def _floor_minute(stamp: str) -> str:
    return stamp[:17] + "00.000+0000" if stamp else stamp


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
