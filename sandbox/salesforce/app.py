"""The emulator's WSGI application: routing, auth, limits, faults, and the REST handlers.

Each request is matched to a short route name (the names `GET /_sandbox/requests`
counts and fault rules select; listed in sandbox/salesforce/__init__.py), then:

1. faults that act before anything else: latency (and the latency_ms knob),
   drop_connection (before);
2. for /services/data routes: expire_session, the session check (401
   INVALID_SESSION_ID), quota, concurrent_limit, the long-running request
   limit (knob), the daily limit (403 REQUEST_LIMIT_EXCEEDED), then counting
   the call;
3. status / rate_limit faults, rendered in Salesforce's shape;
4. the recycle bin drops what it no longer keeps (store.expire_bin, by the
   sandbox's clock);
5. the handler, as the session's user (field-level security: store.readable /
   editable); `Sforce-Limit-Info: api-usage=used/max` on every /services/data
   response. Every response's `Date` header is the sandbox's clock.

The handlers themselves live in rest.py (reads, bulk, tooling, control
routes) and writes.py (saves, collections, composite); their request and
response values in wire.py.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from werkzeug.wrappers import Request, Response

from crmsync.sandbox.common import FaultRule, hang_up, truncated_body

from .auth import soap_fault_xml
from .rest import ReadHandlers
from .soql import SoqlError
from .store import INTEGRATION_USER_ID, ORG_ID, UnknownObject, WriteError
from .wire import Locator, Req, Resp, SfError, bearer, query_text
from .writes import WriteHandlers

if TYPE_CHECKING:
    from .server import SalesforceSandbox

log = logging.getLogger(__name__)
Handler = Callable[..., Resp]
_V = r"^/services/data/v(?P<v>\d+\.\d)"


class SalesforceApp(ReadHandlers, WriteHandlers):
    """WSGI callable; state lives on the SalesforceSandbox it serves."""

    def __init__(self, sb: SalesforceSandbox) -> None:
        self.sb = sb
        self.store = sb.store
        self.locators: OrderedDict[str, Locator] = OrderedDict()
        # (object, user) -> (describe body's digest, when the sandbox first served it after a
        # change): what If-Modified-Since on sobject_describe is compared with (rest.py).
        self.describe_versions: dict[tuple[str, str | None], tuple[str, datetime]] = {}
        self._loc_n = 0
        self._field_n = 0
        self._lock = threading.Lock()
        self.in_flight = 0
        self._started: dict[int, datetime] = {}  # in-flight API requests -> when they arrived
        self._request_n = 0
        self.routes: list[tuple[frozenset[str], re.Pattern[str], str, str, Handler]] = []
        self._build_routes()

    # ------------------------------------------------------------ routing
    def _route(self, methods: str, pattern: str, name: str, kind: str, handler: Handler) -> None:
        self.routes.append((frozenset(methods.split()), re.compile(pattern + "$"), name, kind, handler))

    def _build_routes(self) -> None:
        r = self._route
        r("POST", r"^/services/Soap/u/(?P<v>\d+\.\d)(?:/[^/]*)?", "login", "auth", self.h_login)
        r("POST", r"^/services/oauth2/token", "token", "auth", self.h_token)
        r("GET POST", r"^/services/oauth2/userinfo", "userinfo", "auth", self.h_userinfo)
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
        r("POST", _V + r"/jobs/ingest", "bulk2_ingest_create", "api", self.h_ingest_create)
        r("GET", _V + r"/jobs/ingest", "bulk2_ingest_list", "api", self.h_ingest_list)
        r("PUT", _V + r"/jobs/ingest/(?P<job>\w+)/batches", "bulk2_ingest_upload", "api", self.h_ingest_upload)
        r("GET PATCH DELETE", _V + r"/jobs/ingest/(?P<job>\w+)", "bulk2_ingest_job", "api", self.h_ingest_job)
        r("GET", _V + r"/jobs/ingest/(?P<job>\w+)/(?P<kind>successfulResults|failedResults|unprocessedrecords)", "bulk2_ingest_results", "api", self.h_ingest_results)
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
                    self._request_n += 1
                    token = self._request_n
                    req.arrived = self._started[token] = self.sb.clock()
                try:
                    resp, drop = self._guarded(req, route, kind, handler, params)
                finally:
                    with self._lock:
                        self.in_flight -= 1
                        self._started.pop(token, None)
        if path.startswith("/services/data"):
            resp.headers["Sforce-Limit-Info"] = self.sb.usage.header()
        return self._respond(resp, drop, environ, start_response)

    def _respond(
        self, resp: Resp, drop: FaultRule | None, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        payload = resp.payload()
        sock = environ.get("werkzeug.socket")
        if drop is not None and int(drop.get("bytes", 0) or 0) <= 0:
            hang_up(sock)
            raise ConnectionResetError("sandbox fault: drop_connection")
        response = Response(payload, status=resp.status, content_type=resp.content_type)
        for k, v in resp.headers.items():
            response.headers[k] = v
        if drop is None:
            return response(environ, start_response)
        cut = int(drop.get("bytes", 0))
        start_response(response.status, list(response.headers.items()))
        return truncated_body(payload, cut, sock)

    def _guarded(
        self, req: Req, route: str, kind: str, handler: Handler, params: dict[str, str]
    ) -> tuple[Resp, FaultRule | None]:
        fired = self.sb.faults.fire(route, req.method)
        req.fired = fired
        drop = next((r for r in fired if r.kind == "drop_connection"), None)
        if self.sb.latency_ms > 0:
            self.sb.sleep_ms(self.sb.latency_ms)
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
            req.user = self.sb.auth.user_of(bearer(req.headers))
        for rule in fired:
            if rule.kind in ("status", "rate_limit", "request_limit"):
                return self._fault_response(rule, kind, route), drop
        return self._call(handler, req, params), drop

    def _admit(self, req: Req, fired: list[FaultRule]) -> Resp | None:
        """Session, quota and limits for a /services/data call; None = go ahead (counted)."""
        if any(r.kind == "expire_session" for r in fired):
            self.sb.auth.expire_all()
        if not self.sb.auth.valid(bearer(req.headers)):
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
        limit = self.sb.long_running_limit
        if limit is not None and self.long_running(before=req.arrived) >= limit:
            # "If the number of long running requests exceeds the limit, the API returns a
            # REQUEST_LIMIT_EXCEEDED exception code. Any new concurrent requests aren't
            # processed until there are fewer requests than the allowed limit." (API Request
            # Limits and Allocations; sandbox/realistic.py)
            return SfError(
                403, "REQUEST_LIMIT_EXCEEDED",
                "ConcurrentRequests (Concurrent API Requests) Limit exceeded.",
            ).resp()
        if not self.sb.usage.take():
            return SfError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.").resp()
        return None

    def long_running(self, before: datetime | None = None) -> int:
        """API requests in flight that have run `long_running_seconds` or more by the time a
        request arriving at `before` (default: now) arrived; it never counts itself."""
        at = before or self.sb.clock()
        with self._lock:
            starts = list(self._started.values())
        return sum(1 for t in starts if (at - t).total_seconds() >= self.sb.long_running_seconds)

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
                self.store.expire_bin()
                acting, running = self.store.acting_user, self.store.running_user_id
                self.store.acting_user = req.user
                self.store.running_user_id = req.user or INTEGRATION_USER_ID
                try:
                    return handler(req, **params)
                finally:
                    self.store.acting_user, self.store.running_user_id = acting, running
        except SfError as e:
            return e.resp()
        except SoqlError as e:
            return SfError(400, e.code, e.render(query_text(req))).resp()
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

    def h_userinfo(self, req: Req) -> Resp:
        """OpenID Connect UserInfo for the session's user (Salesforce help "Query for User
        Information"); an unknown session answers 403 Bad_OAuth_Token."""
        user = self.sb.auth.user_of(bearer(req.headers))
        if user is None:
            return Resp(403, "Bad_OAuth_Token", content_type="text/plain;charset=UTF-8")
        row = self.sb.record("User", user) or {}
        return Resp(200, {
            "sub": f"{self.sb.url}/id/{ORG_ID}/{user}",
            "user_id": user,
            "organization_id": ORG_ID,
            "preferred_username": row.get("Username"),
            "email": row.get("Email"),
            "name": row.get("Name"),
            "active": row.get("IsActive", True),
        })


_STATUS_MESSAGES = {
    500: "An unexpected error occurred. Please include this ErrorId if you contact support: 0000000-0 (sandbox)",
    502: "Bad Gateway",
    503: "Server temporarily unavailable; please retry later.",
}


