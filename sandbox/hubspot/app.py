"""WSGI app of the HubSpot emulator: routing, auth, rate limits, faults, handlers.

Every request passes, in order: request accounting (route name below),
latency faults, bearer auth (401 INVALID_AUTHENTICATION / EXPIRED_AUTHENTICATION),
the expire_token fault, rate limits (429 RATE_LIMIT, when enforced), status
and rate_limit faults, then its handler. Responses carry HubSpot's exact
success codes (the client deserialises only on the declared status) and, on
non-search API routes, the X-HubSpot-RateLimit-* headers.

Route names (what fault rules' `route` matches and `GET /_sandbox/requests` counts):

  oauth_token, oauth_token_info
  list, get, create, update, archive, merge, purge, assoc_v3_list
  batch_read, batch_create, batch_update, batch_upsert, batch_archive, search
  assoc_batch_read, assoc_batch_create, assoc_batch_default, assoc_batch_archive,
  assoc_batch_labels_archive, assoc_labels, assoc_labels_create, assoc_labels_update,
  assoc_labels_remove, assoc_list, assoc_create, assoc_create_default, assoc_archive,
  assoc_config_all, assoc_config, assoc_config_create, assoc_config_update, assoc_config_purge
  owners, owner, account_usage (GET /account-info/v3/api-usage/daily/private-apps)
  account_details
  properties, property, property_create, property_update, property_archive,
  properties_batch_read, properties_batch_create, properties_batch_archive,
  groups, group, group_create, group_update, group_archive
  schemas, legacy_properties (reads other connectors make: api_peers.py)

`GET /_sandbox/requests` also counts per route and object as "route:object".
`GET /_sandbox/limits` shows the account's daily usage; `POST /_sandbox/limits`
{"used": n, "limit": m, "resets_at": epoch seconds} sets it (the daily-usage knob).

Fault kinds understood (spec format in sandbox/common.py):

  status          {"status": 500|502|503, "message"?, "retry_after"?}
  rate_limit      {"policy": "TEN_SECONDLY_ROLLING"|"SECONDLY"|"DAILY", "retry_after"?}
  latency         {"ms": 20}
  expire_token    fires -> the OAuth access token of that request is expired from then on
                  (a private app token gets a one-off 401); {"calls": N} alone = every N calls
  revoke          token endpoint answers 400 BAD_REFRESH_TOKEN / invalid_grant
  rotate_refresh_token  token endpoint issues a new refresh token, the old one dies
  reject_write    {"match": {"object": "contacts", "id": "12", <property>: <value>},
                   "code": "...", "message": "...", "mode": "per_input"|"whole_batch"}
                  per_input (default for updates/upserts) -> 207 error for that input;
                  whole_batch (default for creates) -> 400 VALIDATION_ERROR for the call
  index_lag       {"seconds": N}: search hides records modified in the last N seconds (also a
                  standing knob, HubSpotSandbox(index_lag_seconds=N); realistic: sandbox/realistic.py)
  association_dates_frozen  {}: while the rule exists, a primary-company change moves the
                  contact's associatedcompanyid but not its lastmodifieddate /
                  hs_lastmodifieddate (the harsher, unconfirmed reading; by default the
                  dates move, as HubSpot's property definitions imply: objects.Crm.associate)
  underfilled_pages {"size": k}: list/search pages serve only k results, paging continues
  mutate          {"object": "contacts", "id": "12", "action": "update"|"archive"|"create",
                   "properties": {...}}: changes data just before the fired request is answered
  daily_usage     {"used": N, "limit"?: M}: sets the account's daily usage just before the fired
                  request is counted (the daily-usage knob, limits.py), as other apps of the
                  account would spend it
  drop_connection {"bytes": N (default 0: no response at all), "apply": bool}: the TCP
                  connection closes after N body bytes; with apply the request is processed
                  first (a create lands although the client sees a failure: W4, R7)
  workflow_revert {"match": {"object": "companies", "id": "12", <property>: <value>},
                   "set": {<property>: <value>}}: right after an API write lands on a
                  matching record (the response already sent shows the write), a workflow
                  rewrites it; property history says AUTOMATION_PLATFORM (W9; the Salesforce
                  sandbox's post_write)

Property history (history.py): every write records its source; reads serve it
with `propertiesWithHistory` on GET by id, list (limit > 50 with history: 400
VALIDATION_ERROR) and batch read (> 50 inputs with history: 400).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from crmsync.sandbox.common import FaultEngine, FaultRule, RequestLog, hang_up, truncated_body

from . import history as hist
from .api_associations import AssociationsApi
from .api_base import MAX_BATCH, Reply, _body, _bool, _int, _multi, _std_error
from .api_peers import PEER_ROUTES, PeerReadsApi
from .api_properties import PropertiesApi
from .auth import Auth, expired
from .limits import POLICY_MESSAGES, RateLimits
from .objects import Crm, HsError, decode_after, encode_after, not_found, validation_error
from .search import MAX_RESULTS, Searcher
from .store import SINGULAR, Rec, Store, iso, object_type

log = logging.getLogger(__name__)

_O = "/crm/v3/objects/<obj>"
_P = "/crm/v3/properties/<obj>"
_A = "/crm/v4/associations/<a>/<b>"
_V4 = "/crm/v4/objects/<obj>/<rid>/associations"
_C = "/crm/v4/associations/definitions/configurations/<a>/<b>"
ROUTES = [
    ("/oauth/v1/token", "POST", "oauth_token"),
    ("/oauth/v1/access-tokens/<token>", "GET", "oauth_token_info"),
    (_O, "GET", "list"),
    (_O, "POST", "create"),
    (_O + "/search", "POST", "search"),
    (_O + "/merge", "POST", "merge"),
    (_O + "/gdpr-delete", "POST", "purge"),
    (_O + "/batch/read", "POST", "batch_read"),
    (_O + "/batch/create", "POST", "batch_create"),
    (_O + "/batch/update", "POST", "batch_update"),
    (_O + "/batch/upsert", "POST", "batch_upsert"),
    (_O + "/batch/archive", "POST", "batch_archive"),
    (_O + "/<rid>", "GET", "get"),
    (_O + "/<rid>", "PATCH", "update"),
    (_O + "/<rid>", "DELETE", "archive"),
    (_O + "/<rid>/associations/<to>", "GET", "assoc_v3_list"),
    (_A + "/batch/read", "POST", "assoc_batch_read"),
    (_A + "/batch/create", "POST", "assoc_batch_create"),
    (_A + "/batch/associate/default", "POST", "assoc_batch_default"),
    (_A + "/batch/archive", "POST", "assoc_batch_archive"),
    (_A + "/batch/labels/archive", "POST", "assoc_batch_labels_archive"),
    (_A + "/labels", "GET", "assoc_labels"),
    (_A + "/labels", "POST", "assoc_labels_create"),
    (_A + "/labels", "PUT", "assoc_labels_update"),
    (_A + "/labels/<int:type_id>", "DELETE", "assoc_labels_remove"),
    ("/crm/v4/associations/definitions/configurations/all", "GET", "assoc_config_all"),
    (_C, "GET", "assoc_config"),
    (_C + "/batch/create", "POST", "assoc_config_create"),
    (_C + "/batch/update", "POST", "assoc_config_update"),
    (_C + "/batch/purge", "POST", "assoc_config_purge"),
    (_V4 + "/<to>", "GET", "assoc_list"),
    (_V4 + "/<to>/<to_id>", "PUT", "assoc_create"),
    (_V4 + "/<to>/<to_id>", "DELETE", "assoc_archive"),
    (_V4 + "/default/<to>/<to_id>", "PUT", "assoc_create_default"),
    ("/account-info/v3/api-usage/daily/private-apps", "GET", "account_usage"),
    ("/crm/v3/owners/", "GET", "owners"),
    ("/crm/v3/owners/<oid>", "GET", "owner"),
    ("/account-info/v3/details", "GET", "account_details"),
    (_P, "GET", "properties"),
    (_P, "POST", "property_create"),
    (_P + "/batch/read", "POST", "properties_batch_read"),
    (_P + "/batch/create", "POST", "properties_batch_create"),
    (_P + "/batch/archive", "POST", "properties_batch_archive"),
    (_P + "/groups", "GET", "groups"),
    (_P + "/groups", "POST", "group_create"),
    (_P + "/groups/<name>", "GET", "group"),
    (_P + "/groups/<name>", "PATCH", "group_update"),
    (_P + "/groups/<name>", "DELETE", "group_archive"),
    (_P + "/<name>", "GET", "property"),
    (_P + "/<name>", "PATCH", "property_update"),
    (_P + "/<name>", "DELETE", "property_archive"),
    ("/_sandbox/requests", "GET", "_sandbox_requests"),
    ("/_sandbox/reset", "POST", "_sandbox_reset"),
    ("/_sandbox/records/<obj>", "GET", "_sandbox_records"),
    ("/_sandbox/faults", "GET", "_sandbox_faults_get"),
    ("/_sandbox/faults", "POST", "_sandbox_faults"),
    ("/_sandbox/limits", "GET", "_sandbox_limits_get"),
    ("/_sandbox/limits", "POST", "_sandbox_limits"),
]
ROUTES += PEER_ROUTES  # reads other connectors make (api_peers.py; bench/peers.py)
URLS = Map([Rule(p, methods=[m], endpoint=e) for p, m, e in ROUTES], strict_slashes=False)
REQUEST_KINDS = {"status", "rate_limit", "latency", "expire_token", "mutate", "drop_connection",
                 "daily_usage"}
HISTORY_PAGE = 50  # records per read with propertiesWithHistory
MAX_TEXT_CHARS = 65_536
_DROP = "hubspot_sandbox.drop"
# The emulated account's portal (hub) id and UI domain (GET /account-info/v3/details).
PORTAL_ID = 24_681_357
UI_DOMAIN = "app.hubspot.com"


class HubSpotApp(AssociationsApi, PropertiesApi, PeerReadsApi):
    """The emulator's HTTP face over a `Crm` (see the module docstring for routes and faults).

    Object, owner and sandbox-control handlers live here; association and
    property handlers come from the mixins, shared helpers from ApiBase.
    """

    def __init__(self, crm: Crm, faults: FaultEngine, limits: RateLimits, auth: Auth,
                 sleep: Callable[[float], None] = time.sleep,
                 on_reset: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.crm = crm
        self.store: Store = crm.store
        self.faults = faults
        self.limits = limits
        self.auth = auth
        self.sleep = sleep
        self.log = RequestLog()
        self.object_log = RequestLog()
        self.searcher = Searcher()
        self.on_reset = on_reset
        self.index_lag_seconds = 0.0  # search hides records modified this recently (knob)
        self.latency_ms = 0.0  # every API request waits this long before it is answered (knob)
        # A text value written through the API may hold this many characters (X3): "When
        # the value is added through the CRM, the character limit is 65,536 characters. When
        # the value is submitted through a form, there is no limit" (knowledge.hubspot.com
        # "property field types"). What the API answers past it is not documented: the
        # harsher reading, a 400 VALIDATION_ERROR refusing the whole request or batch
        # (api-facts §8). The in-process create/update (a form, an import) has no limit.
        self.max_text_chars: int | None = MAX_TEXT_CHARS

    # ------------------------------------------------------------ WSGI
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        req = Request(environ)
        resp = self.dispatch(req)
        drop: FaultRule | None = environ.get(_DROP)
        if drop is None:
            return resp(environ, start_response)
        sock = environ.get("werkzeug.socket")
        cut = int(drop.get("bytes", 0) or 0)
        if cut <= 0:
            hang_up(sock)
            raise ConnectionResetError("sandbox fault: drop_connection")
        start_response(resp.status, list(resp.headers.items()))
        return truncated_body(resp.get_data(), cut, sock)

    def dispatch(self, req: Request) -> Response:
        adapter = URLS.bind_to_environ(req.environ)
        try:
            endpoint, args = adapter.match()
        except MethodNotAllowed:
            return _json(405, HsError(405, "VALIDATION_ERROR", f"{req.method} is not allowed here").body())
        except NotFound:
            self.log.record(req.method, "unknown")
            return _json(404, HsError(404, "OBJECT_NOT_FOUND", f"No route for {req.path}").body())
        except HTTPException as e:  # redirects and the like
            return _json(e.code or 400, HsError(e.code or 400, "VALIDATION_ERROR", str(e)).body())
        if endpoint.startswith("_sandbox"):
            status, body = getattr(self, "h" + endpoint)(req, **args)
            return _json(status, body)
        return self._api(req, endpoint, dict(args))

    def _api(self, req: Request, endpoint: str, args: dict[str, Any]) -> Response:
        self.log.record(req.method, endpoint)
        obj_name = args.get("obj") or args.get("a")
        if obj_name:
            self.object_log.record(req.method, f"{endpoint}:{object_type(obj_name) or obj_name}")
        kinds = set(REQUEST_KINDS)
        if endpoint.startswith("oauth"):  # token calls don't count towards API faults
            kinds = {"status", "latency", "revoke", "rotate_refresh_token"}
        fired = self.faults.fire(endpoint, req.method, kinds=kinds)
        if self.latency_ms > 0:
            self.sleep(self.latency_ms / 1000.0)
        for r in fired:
            if r.kind == "latency":
                self.sleep(float(r.get("ms", 0)) / 1000.0)
            elif r.kind == "drop_connection":
                req.environ[_DROP] = r
                if not r.get("apply") and int(r.get("bytes", 0) or 0) <= 0:
                    return Response(status=500)  # hung up before the request is processed
        now = self.store.clock()
        is_search = endpoint == "search"
        oauth = False
        headers: dict[str, str] = {}
        try:
            if endpoint.startswith("oauth"):
                with self.store.lock:
                    return self._oauth(req, endpoint, args, fired, now)
            with self.store.lock:  # one request at a time: the store is plain dicts
                token, oauth = self.auth.check(req.headers.get("Authorization"), now)
                if any(r.kind == "expire_token" for r in fired):
                    self.auth.expire(token, now)
                    raise expired(0)
                if endpoint == "account_usage" and oauth:
                    # Documented for private apps only; what HubSpot answers an OAuth token
                    # here is not documented (UNCONFIRMED): a scope refusal is the harsher reading.
                    raise HsError(403, "MISSING_SCOPES",
                                  "This API is available to private apps only.")
                for r in fired:
                    if r.kind == "daily_usage":  # other apps spent the account's calls meanwhile
                        self.limits.set_daily_usage(used=r.get("used"), limit=r.get("limit"))
                limited = self.limits.admit(now, is_search)
                if limited is not None:
                    raise _rate_limited(limited[0], limited[1])
                for r in fired:
                    if r.kind in ("status", "rate_limit"):
                        raise _fault_error(r)
                    if r.kind == "mutate":
                        self._mutate(r)
                if not is_search:
                    headers.update(self.limits.headers(now, oauth))
                self.crm.writer = hist.integration(oauth)  # whose writes these are (history)
                status, body = getattr(self, "h_" + endpoint)(req, **args)
            return _json(status, body, headers)
        except HsError as e:
            if not is_search and e.status not in (401, 429):
                with self.store.lock:
                    headers.update(self.limits.headers(now, oauth))
            headers.update(e.headers)
            return _json(e.status, e.body(), headers)
        except (ValueError, TypeError, KeyError, AttributeError) as e:  # malformed input, mostly
            log.warning("hubspot sandbox: %s %s rejected as invalid input: %r", req.method, endpoint, e)
            log.debug("hubspot sandbox: invalid input traceback", exc_info=True)
            err = HsError(400, "VALIDATION_ERROR", f"Invalid input JSON: {type(e).__name__}: {e}")
            return _json(400, err.body(), headers)

    def _oauth(self, req: Request, endpoint: str, args: dict[str, Any], fired: list[FaultRule],
               now: float) -> Response:
        for r in fired:
            if r.kind == "status":
                raise _fault_error(r)
        if endpoint == "oauth_token_info":
            return _json(200, self.auth.info(args["token"], now))
        form = dict(req.form.items()) if req.form else _body(req)
        body = self.auth.issue(form, now, rotate=any(r.kind == "rotate_refresh_token" for r in fired),
                               revoked=any(r.kind == "revoke" for r in fired))
        return _json(200, body)

    # ------------------------------------------------------------ helpers
    def _reject(self, obj: str, rid: Any, props: dict[str, Any], default_mode: str
                ) -> tuple[str, dict[str, Any]] | None:
        """A reject_write rule matching this write: (mode, error info) or None."""
        if not any(r.kind == "reject_write" for r in self.faults.rules):
            return None
        record = {**props, "object": obj, "type": obj, "id": None if rid is None else str(rid)}
        rule = self.faults.match_record("reject_write", record)
        if rule is None:
            return None
        code = str(rule.get("code", "INVALID_OPTION"))
        message = str(rule.get("message", "Property values were not valid"))
        keys = [k for k in rule.match if k not in ("object", "type", "id")]
        name = str(rule.get("property") or (keys[0] if keys else next(iter(props), "")))
        return str(rule.get("mode", default_mode)), {"isValid": False, "message": message,
                                                    "error": code, "name": name,
                                                    "localizedErrorMessage": message}

    # ------------------------------------------------------------ objects: reads
    def h_list(self, req: Request, obj: str) -> Reply:
        obj = self._obj(obj)
        q = req.args
        history = _multi(q, "propertiesWithHistory")
        asked = _int(q.get("limit"), 10)
        if history and asked > HISTORY_PAGE:
            # "API allows max 50 items per call with property history" (api-facts §1;
            # hubspot-api-python#143: 400 Bad Request over it)
            raise HsError(400, "VALIDATION_ERROR", f"limit must be at most {HISTORY_PAGE} when "
                          f"propertiesWithHistory is requested; got {asked}")
        limit = min(max(asked, 1), 100)
        after = decode_after(q.get("after"))
        archived = _bool(q.get("archived"))
        names = self.crm.names(obj, _multi(q, "properties"))
        assoc = [a for a in (object_type(x) for x in _multi(q, "associations")) if a]
        table = self.store.tables[obj]
        if archived:
            self.crm.expire_archived(obj)
        size = self._underfill("list", req.method, limit)
        ids, nxt = table.page_ids(after, limit, archived)
        if size is not None and size < len(ids):
            nxt, ids = ids[size], ids[:size]
        src = table.archived if archived else table.live
        base = self._base(req)
        results = [self.crm.wire(obj, src[i], names, assoc, base, history) for i in ids]
        body: dict[str, Any] = {"results": results}
        if nxt is not None:
            token = encode_after(nxt)
            body["paging"] = {"next": {"after": token,
                                       "link": f"{base}/crm/v3/objects/{obj}?after={token}"}}
        return 200, body

    def h_get(self, req: Request, obj: str, rid: str) -> Reply:
        obj = self._obj(obj)
        q = req.args
        if _bool(q.get("archived")):
            self.crm.expire_archived(obj)
        rec = self._find(obj, rid, q.get("idProperty"), _bool(q.get("archived")))
        if rec is None:
            raise not_found(rid)
        names = self.crm.names(obj, _multi(q, "properties"))
        assoc = [a for a in (object_type(x) for x in _multi(q, "associations")) if a]
        return 200, self.crm.wire(obj, rec, names, assoc, self._base(req),
                                  _multi(q, "propertiesWithHistory"))

    def h_assoc_v3_list(self, req: Request, obj: str, rid: str, to: str) -> Reply:
        obj, to = self._obj(obj), self._obj(to)
        rec = self._find(obj, rid)
        if rec is None:
            raise not_found(rid)
        entries = self.crm.v3_associations(obj, rec.id, to)
        start = decode_after(req.args.get("after"))
        limit = min(max(_int(req.args.get("limit"), 500), 1), 500)
        body: dict[str, Any] = {"results": entries[start:start + limit]}
        if start + limit < len(entries):
            body["paging"] = {"next": {"after": encode_after(start + limit)}}
        return 200, body

    def h_batch_read(self, req: Request, obj: str) -> Reply:
        obj = self._obj(obj)
        started = self._now_iso()
        body = _body(req)
        # With history, at most 50 inputs (undocumented for batch read: the harsher reading
        # of the list endpoint's cap, api-facts §1).
        inputs = self._inputs(body, cap=HISTORY_PAGE if body.get("propertiesWithHistory")
                              else MAX_BATCH)
        names = self.crm.names(obj, body.get("properties") or None)
        id_prop = body.get("idProperty")
        archived = _bool(req.args.get("archived"))
        if archived:
            self.crm.expire_archived(obj)
        results, missing = [], []
        for it in inputs:
            rec = self._find(obj, str(it.get("id", "")), id_prop, archived)
            if rec is None:
                missing.append(str(it.get("id", "")))
            else:
                results.append(self.crm.wire(obj, rec, names,
                                             history=body.get("propertiesWithHistory") or None))
        errors = [_std_error("OBJECT_NOT_FOUND", f"Could not get some {SINGULAR[obj].upper()} objects, "
                             "they may be deleted or not exist. Check that ids are valid.",
                             {"ids": missing})] if missing else []
        return self._batch(results, errors, 200, started)

    def h_search(self, req: Request, obj: str) -> Reply:
        obj = self._obj(obj)
        body = _body(req)
        lag = self._index_lag()
        visible = None if lag is None else self.store.now_ms() - int(lag * 1000)
        table = self.store.tables[obj]
        total, ids, after, limit = self.searcher.run(obj, table, self.crm.schemas[obj], body,
                                                     self.store.version, visible)
        end = min(after + limit, total, MAX_RESULTS)
        size = self._underfill("search", req.method, limit)
        if size is not None:
            end = min(end, after + size)
        names = self.crm.names(obj, body.get("properties") or None)
        results = [self.crm.wire(obj, table.live[i], names) for i in ids[after:end]]
        out: dict[str, Any] = {"total": total, "results": results}
        if end < total:
            out["paging"] = {"next": {"after": str(end)}}
        return 200, out

    def _mutate(self, r: FaultRule) -> None:
        """The mutate fault: change data just before this request is answered (P3, P10)."""
        obj = self._obj(str(r.get("object", "contacts")))
        action = str(r.get("action", "update"))
        props = {str(k): str(v) for k, v in (r.get("properties") or {}).items()}
        person = hist.source("person")  # another user, mid-request
        if action == "create":
            self.crm.create(obj, props, source=person)
            return
        rec = self._find(obj, str(r.get("id", "")))
        if rec is None:
            return
        if action == "archive":
            self.crm.archive(obj, rec)
        else:
            self.crm.update(obj, rec, props, source=person)

    def _index_lag(self) -> float | None:
        lags = [float(r.get("seconds", 0)) for r in self.faults.rules if r.kind == "index_lag"]
        if self.index_lag_seconds > 0:
            lags.append(self.index_lag_seconds)
        return max(lags) if lags else None

    def _underfill(self, route: str, method: str, limit: int) -> int | None:
        fired = self.faults.fire(route, method, kinds={"underfilled_pages"})
        if not fired:
            return None
        return max(0, int(fired[0].get("size", max(1, limit // 2))))

    # ------------------------------------------------------------ objects: writes
    def h_create(self, req: Request, obj: str) -> Reply:
        obj = self._obj(obj)
        body = _body(req)
        props, errors = self.crm.check(obj, body.get("properties"), max_chars=self.max_text_chars)
        if errors:
            raise validation_error(errors)
        rej = self._reject(obj, None, props, "whole_batch")
        if rej:
            raise validation_error([rej[1]])
        self.crm.check_required(obj, props)
        self.crm.check_unique(obj, [(None, props)])
        assoc = self.crm.check_associations(obj, body.get("associations"))
        rec = self.crm.create(obj, props, assoc)
        out = self.crm.wire(obj, rec, self.crm.names(obj, list(props) or None))
        self._workflows(obj, rec)
        return 201, out

    def h_update(self, req: Request, obj: str, rid: str) -> Reply:
        obj = self._obj(obj)
        rec = self._find(obj, rid, req.args.get("idProperty"))
        if rec is None:
            raise not_found(rid)
        props, errors = self.crm.check(obj, _body(req).get("properties"), max_chars=self.max_text_chars)
        if errors:
            raise validation_error(errors)
        rej = self._reject(obj, rec.id, {**rec.props, **props}, "per_input")
        if rej:
            raise validation_error([rej[1]])
        self.crm.check_unique(obj, [(rec.id, props)])
        self.crm.update(obj, rec, props)
        out = self.crm.wire(obj, rec, self.crm.names(obj, list(props) or None))
        self._workflows(obj, rec)
        return 200, out

    def h_archive(self, req: Request, obj: str, rid: str) -> Reply:
        obj = self._obj(obj)
        rec = self._find(obj, rid)
        if rec is not None:
            self.crm.archive(obj, rec)
        return 204, None

    def h_purge(self, req: Request, obj: str) -> Reply:
        obj = self._obj(obj)
        body = _body(req)
        rec = self._find(obj, str(body.get("objectId", "")), body.get("idProperty"))
        if rec is None:
            raise not_found(body.get("objectId"))
        self.crm.purge(obj, rec)
        return 204, None

    def h_merge(self, req: Request, obj: str) -> Reply:
        obj = self._obj(obj)
        body = _body(req)
        a, b = str(body.get("primaryObjectId", "")), str(body.get("objectIdToMerge", ""))
        primary, other = self._find(obj, a), self._find(obj, b)
        if primary is None or other is None:
            raise HsError(400, "VALIDATION_ERROR", f"Could not merge {SINGULAR[obj]} {a} and {b}: "
                          "one of them does not exist")
        if primary is other:
            raise HsError(400, "VALIDATION_ERROR", "Can't merge an object into itself")
        rec = self.crm.merge(obj, primary, other)
        return 200, self.crm.wire(obj, rec, self.crm.names(obj, None))

    def h_batch_create(self, req: Request, obj: str) -> Reply:
        obj = self._obj(obj)
        started = self._now_iso()
        inputs = self._inputs(_body(req))
        prepared, bad, rejected = [], [], []
        for n, it in enumerate(inputs):
            props, errors = self.crm.check(obj, it.get("properties"), max_chars=self.max_text_chars)
            bad.extend(errors)
            rej = None if errors else self._reject(obj, None, props, "whole_batch")
            if rej and rej[0] == "whole_batch":
                bad.append(rej[1])
            prepared.append((n, it, props, rej))
        if bad:
            raise validation_error(bad)
        for _, _, props, _ in prepared:
            self.crm.check_required(obj, props)
        self.crm.check_unique(obj, [(None, p) for _, _, p, r in prepared if not r])
        assocs = [self.crm.check_associations(obj, it.get("associations")) for _, it, _, _ in prepared]
        results = []
        for (_, it, props, rej), assoc in zip(prepared, assocs, strict=True):
            if rej:
                rejected.append(_input_error(rej[1], None, it.get("objectWriteTraceId")))
                continue
            rec = self.crm.create(obj, props, assoc)
            results.append(self._written(obj, rec, props, it))
            self._workflows(obj, rec)
        return self._batch(results, rejected, 201, started)

    def _workflows(self, obj: str, rec: Rec) -> None:
        """Fault kind workflow_revert: a workflow rewrites the record after an API write."""
        if not any(r.kind == "workflow_revert" for r in self.faults.rules):
            return
        record = {**rec.props, "object": obj, "type": obj, "id": str(rec.id)}
        rule = self.faults.match_record("workflow_revert", record)
        if rule is None:
            return
        values = {str(k): "" if v is None else str(v) for k, v in (rule.get("set") or {}).items()}
        if values:
            self.crm.update(obj, rec, values, source=hist.source("workflow", rule.get("workflow_id")))

    def _written(self, obj: str, rec: Rec, props: dict[str, Any], it: dict[str, Any]) -> dict[str, Any]:
        d = self.crm.wire(obj, rec, self.crm.names(obj, list(props) or None))
        if it.get("objectWriteTraceId"):
            d["objectWriteTraceId"] = str(it["objectWriteTraceId"])
        return d

    def h_batch_update(self, req: Request, obj: str) -> Reply:
        obj = self._obj(obj)
        started = self._now_iso()
        inputs = self._inputs(_body(req))
        ids = [str(it.get("id", "")) for it in inputs]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise HsError(400, "VALIDATION_ERROR", f"Duplicate IDs found in batch input: {dupes}. "
                          "IDs must be unique", context={"ids": dupes})
        plan, bad, missing, rejected = [], [], [], []
        for it in inputs:
            rec = self._find(obj, str(it.get("id", "")), it.get("idProperty"))
            props, errors = self.crm.check(obj, it.get("properties"), max_chars=self.max_text_chars)
            bad.extend(errors)
            if rec is None:
                missing.append(str(it.get("id", "")))
                continue
            rej = None if errors else self._reject(obj, rec.id, {**rec.props, **props}, "per_input")
            if rej and rej[0] == "whole_batch":
                bad.append(rej[1])
            plan.append((rec, props, it, rej))
        if bad:
            raise validation_error(bad)
        self.crm.check_unique(obj, [(rec.id, p) for rec, p, _, r in plan if not r])
        results = []
        for rec, props, it, rej in plan:
            if rej:
                rejected.append(_input_error(rej[1], str(rec.id), it.get("objectWriteTraceId")))
                continue
            self.crm.update(obj, rec, props)
            results.append(self._written(obj, rec, props, it))
            self._workflows(obj, rec)
        errors = list(rejected)
        if missing:
            errors.insert(0, _std_error("OBJECT_NOT_FOUND", f"Could not get some {SINGULAR[obj].upper()} "
                                        "objects, they may be deleted or not exist. Check that ids are valid.",
                                        {"ids": missing}))
        return self._batch(results, errors, 200, started)

    def h_batch_upsert(self, req: Request, obj: str) -> Reply:
        obj = self._obj(obj)
        started = self._now_iso()
        inputs = self._inputs(_body(req))
        plan, bad, rejected = [], [], []
        for it in inputs:
            id_prop = it.get("idProperty") or "hs_object_id"
            key = str(it.get("id", ""))
            rec = self._find(obj, key, id_prop)
            props, errors = self.crm.check(obj, it.get("properties"), max_chars=self.max_text_chars)
            if rec is None and id_prop != "hs_object_id":
                props.setdefault(id_prop, key)
            bad.extend(errors)
            rej = None if errors else self._reject(obj, None if rec is None else rec.id,
                                                   {**(rec.props if rec else {}), **props}, "per_input")
            if rej and rej[0] == "whole_batch":
                bad.append(rej[1])
            plan.append((rec, props, it, rej, id_prop, key))
        if bad:
            raise validation_error(bad)
        self.crm.check_unique(obj, [(None if rec is None else rec.id, p) for rec, p, *_ in plan])
        results = []
        for rec, props, it, rej, id_prop, key in plan:
            if rej:
                rejected.append(_input_error(rej[1], key, it.get("objectWriteTraceId")))
                continue
            if rec is None:
                if id_prop == "hs_object_id":
                    rejected.append(_std_error("OBJECT_NOT_FOUND", f"No {SINGULAR[obj]} with id {key}",
                                               {"ids": [key]}))
                    continue
                self.crm.check_required(obj, props)
                rec, new = self.crm.create(obj, props), True
            else:
                self.crm.update(obj, rec, props)
                new = False
            d = self._written(obj, rec, props, it)
            d["new"] = new
            results.append(d)
            self._workflows(obj, rec)
        return self._batch(results, rejected, 200, started)

    def h_batch_archive(self, req: Request, obj: str) -> Reply:
        obj = self._obj(obj)
        for it in self._inputs(_body(req)):
            rec = self._find(obj, str(it.get("id", "")))
            if rec is not None:
                self.crm.archive(obj, rec)
        return 204, None

    # ------------------------------------------------------------ account info
    def h_account_usage(self, req: Request) -> Reply:
        """The account's daily API usage (private apps), counted by the limits (limits.py)."""
        return 200, self.limits.usage_body(self.store.clock())

    # ------------------------------------------------------------ owners
    def h_owners(self, req: Request) -> Reply:
        q = req.args
        archived = _bool(q.get("archived"))
        email = (q.get("email") or "").strip().casefold()
        owners = [o for o in self.crm.owners.values() if o["archived"] == archived
                  and (not email or str(o.get("email") or "").casefold() == email)]
        owners.sort(key=lambda o: int(o["id"]) if str(o["id"]).isdigit() else 0)
        limit = min(max(_int(q.get("limit"), 100), 1), 500)
        start = decode_after(q.get("after"))
        body: dict[str, Any] = {"results": owners[start:start + limit]}
        if start + limit < len(owners):
            token = encode_after(start + limit)
            body["paging"] = {"next": {"after": token,
                                       "link": f"{self._base(req)}/crm/v3/owners/?after={token}"}}
        return 200, body

    def h_owner(self, req: Request, oid: str) -> Reply:
        by = req.args.get("idProperty") or "id"
        archived = _bool(req.args.get("archived"))
        for o in self.crm.owners.values():
            if str(o.get("userId" if by == "userId" else "id")) == oid and o["archived"] == archived:
                return 200, o
        raise HsError(404, "OBJECT_NOT_FOUND", f"Owner {oid} not found")

    # ------------------------------------------------------------ account
    def h_account_details(self, req: Request) -> Reply:
        """GET /account-info/v3/details: the account's own settings. The shape of HubSpot's
        answer (https://developers.hubspot.com/docs/api-reference/latest/account/account-information/get-account-details):
        portalId and uiDomain are what crmsync reads (links to records)."""
        return 200, {
            "portalId": PORTAL_ID,
            "accountType": "SANDBOX",
            "timeZone": "UTC",
            "companyCurrency": "USD",
            "additionalCurrencies": [],
            "utcOffset": "+00:00",
            "utcOffsetMilliseconds": 0,
            "uiDomain": UI_DOMAIN,
            "dataHostingLocation": "na1",
        }

    # ------------------------------------------------------------ sandbox control
    def h_sandbox_requests(self, req: Request) -> Reply:
        counts = self.log.counts()
        counts["by_object"] = self.object_log.counts()["by_route"]
        return 200, counts

    def h_sandbox_reset(self, req: Request) -> Reply:
        body = _body(req) if req.get_data() else {}
        self.log.reset()
        self.object_log.reset()
        if self.on_reset is not None:
            self.on_reset(body)
        return 200, {"reset": True}

    def h_sandbox_limits_get(self, req: Request) -> Reply:
        """The account's daily usage now (what the account-info API would say)."""
        with self.store.lock:
            return 200, self.limits.usage_body(self.store.clock())["results"][0]

    def h_sandbox_limits(self, req: Request) -> Reply:
        """The daily-usage knob over HTTP: {"used": n, "limit": m, "resets_at": epoch seconds}."""
        body = _body(req)
        with self.store.lock:
            self.limits.set_daily_usage(used=body.get("used"), limit=body.get("limit"),
                                        resets_at=body.get("resets_at"))
            return 200, self.limits.usage_body(self.store.clock())["results"][0]

    def h_sandbox_records(self, req: Request, obj: str) -> Reply:
        obj = self._obj(obj)
        with self.store.lock:
            return 200, {"results": dump_records(self.crm, obj, _bool(req.args.get("archived")))}

    def h_sandbox_faults_get(self, req: Request) -> Reply:
        return 200, {"rules": [{"kind": r.kind, "route": r.route, "method": r.method, "seen": r.seen,
                                "fired": r.fired, **r.params} for r in self.faults.rules]}

    def h_sandbox_faults(self, req: Request) -> Reply:
        raw = req.get_data(as_text=True).strip()
        load_faults(self.faults, raw or None)
        return 200, {"rules": len(self.faults.rules)}


# ------------------------------------------------------------------ module helpers


def load_faults(engine: FaultEngine, spec: Any) -> None:
    """Load a spec; an expire_token rule with only {"calls": N} fires every N calls."""
    engine.load(spec)
    for r in engine.rules:
        if r.kind == "expire_token" and r.get("calls") and not (r.nth or r.after or r.every or r.probability):
            r.every = int(r.get("calls"))


def dump_records(crm: Crm, obj: str, archived: bool = False) -> list[dict[str, Any]]:
    """Records in the dataset shape (id, properties, associations with labels)."""
    table = crm.store.tables[obj]
    src = table.archived if archived else table.live
    out = []
    types = crm.assoc.types
    for rid in sorted(src):
        rec = src[rid]
        assoc: dict[str, list[dict[str, Any]]] = {}
        if not archived:
            for to in ("companies", "contacts", "deals", "tasks"):
                if to == obj:
                    continue
                items: list[dict[str, Any]] = []
                for tid, tys in crm.assoc.targets(obj, rid, to):
                    labels: list[str | None] = ["primary" if lb == "Primary" and types[t].category == "HUBSPOT_DEFINED"
                              else lb for t, lb in ((t, types[t].label) for t in tys) if lb]
                    items.extend({"id": str(tid), "label": lb} for lb in labels or [None])
                if items:
                    assoc[to] = items
        d: dict[str, Any] = {"id": str(rid), "properties": dict(rec.props), "associations": assoc,
                             "createdAt": iso(rec.created), "updatedAt": iso(rec.modified),
                             "archived": rec.archived_at is not None}
        if rec.archived_at is not None:
            d["archivedAt"] = iso(rec.archived_at)
        out.append(d)
    return out




def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    if status == 204 or body is None:
        return Response(status=status, headers=headers)
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return Response(data, status=status, headers=headers, content_type="application/json;charset=utf-8")














def _input_error(info: dict[str, Any], rid: str | None, trace: Any) -> dict[str, Any]:
    context: dict[str, list[str]] = {}
    if rid is not None:
        context["ids"] = [rid]
    if trace:
        context["objectWriteTraceId"] = [str(trace)]
    err = _std_error("VALIDATION_ERROR", f"Property values were not valid: {json.dumps([info])}", context)
    err["errors"] = [{"message": info["message"], "code": info["error"],
                      "context": {"propertyName": [info["name"]]}}]
    if rid is not None:
        err["id"] = rid
    return err




def _rate_limited(policy: str, retry_after: int | None) -> HsError:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    message = POLICY_MESSAGES.get(policy, POLICY_MESSAGES["TEN_SECONDLY_ROLLING"])
    if policy == "DAILY":
        # The documented body (usage guidelines, api-facts §2): status, message, errorType,
        # correlationId, policyName, requestId.
        return HsError(429, "", message, headers=headers, errorType="RATE_LIMIT",
                       policyName=policy, requestId=str(uuid.uuid4()))
    return HsError(429, "", message, headers=headers, errorType="RATE_LIMIT", policyName=policy,
                   groupName="publicapi:private-app:sandbox")


def _fault_error(r: FaultRule) -> HsError:
    if r.kind == "rate_limit":
        ra = r.get("retry_after")
        return _rate_limited(str(r.get("policy", "TEN_SECONDLY_ROLLING")).upper(),
                             None if ra is None else int(ra))
    status = int(r.get("status", 500))
    messages = {500: "internal error", 502: "Bad Gateway", 503: "Service Unavailable",
                504: "Gateway Timeout"}
    headers = {"Retry-After": str(r.get("retry_after"))} if r.get("retry_after") is not None else {}
    return HsError(status, str(r.get("category", "INTERNAL_ERROR" if status == 500 else "SERVICE_UNAVAILABLE")),
                   str(r.get("message", messages.get(status, "error"))), headers=headers)
