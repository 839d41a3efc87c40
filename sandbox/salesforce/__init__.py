"""Loopback Salesforce emulator that unmodified simple-salesforce 1.12.x talks to.

    from crmsync.sandbox.salesforce import SalesforceSandbox
    sb = SalesforceSandbox(dataset).start()      # TLS on 127.0.0.1, sb.url, sb.ca_file

Modules: server.py (SalesforceSandbox, serve_forever), app.py (WSGI, routes,
auth/limits/faults), rest.py and writes.py (the handlers), wire.py (their
request/response values), store.py (records, indexes, the recycle bin), soql.py
(SOQL parser, evaluator and JSON rendering), bulk.py (Bulk API 2.0 query jobs),
ingest.py (Bulk API 2.0 ingest jobs), auth.py (logins, sessions, the dummy
credentials), schema.py (objects, fields, describe), security.py (field-level
security and the permission-set objects that grant it), compound.py (compound
address fields: BillingAddress, MailingAddress, Address).

Route names (what `GET /_sandbox/requests` counts and fault rules' `route` matches):

    login                          POST /services/Soap/u/{v}
    token                          POST /services/oauth2/token    (password, client_credentials,
                                                                   JWT bearer, refresh_token)
    userinfo                       GET  /services/oauth2/userinfo (the session's user)
    versions                       GET  /services/data/            (no session, not counted)
    resources                      GET  /services/data/vXX.X/
    query, query_all               GET  .../query?q=, .../queryAll?q=
    query_more                     GET  .../query/{locator}-{n} (queryAll's nextRecordsUrl too),
                                        .../queryAll/{locator}-{n}
    limits                         GET  .../limits
    describe_global                GET  .../sobjects
    sobject_basic, sobject_create  GET, POST .../sobjects/{Obj}
    sobject_describe               GET  .../sobjects/{Obj}/describe
    sobject_updated, sobject_deleted  GET .../sobjects/{Obj}/updated|deleted?start=&end=
    sobject_row                    GET PATCH DELETE .../sobjects/{Obj}/{Id}
    sobject_ext                    GET PATCH DELETE .../sobjects/{Obj}/{ExtField}/{value}
    composite                      POST .../composite            (<= 25 subrequests, 1 call)
    composite_sobjects             POST PATCH DELETE .../composite/sobjects
    composite_sobjects_batch_read  GET POST .../composite/sobjects/{Obj}
    composite_sobjects_upsert      PATCH .../composite/sobjects/{Obj}/{ExtField}  (an External ID
                                        field; Id or a plain field: 400, no per-record results)
    bulk2_query_create, bulk2_query_list   POST, GET .../jobs/query
    bulk2_query_poll, bulk2_query_abort, bulk2_query_delete   GET, PATCH, DELETE .../jobs/query/{id}
    bulk2_query_results            GET  .../jobs/query/{id}/results?maxRecords=&locator=
    bulk2_ingest_create, bulk2_ingest_list   POST, GET .../jobs/ingest
    bulk2_ingest_upload            PUT  .../jobs/ingest/{id}/batches
    bulk2_ingest_job               GET PATCH DELETE .../jobs/ingest/{id}   (poll, close/abort, delete)
    bulk2_ingest_results           GET  .../jobs/ingest/{id}/successfulResults|failedResults|unprocessedrecords
    tooling                        POST .../tooling/sobjects/CustomField

Control routes (not counted): GET /_sandbox/requests, POST /_sandbox/reset,
GET /_sandbox/records/{Obj}, GET|POST /_sandbox/faults (POST replaces the
spec), POST /_sandbox/limits {"used": n, "max": m}.

Knobs (server.py; documented values in sandbox/realistic.py, which `crmsync sandbox`
uses by default): `latency_ms` (every API request waits that long), `long_running_limit`
/ `long_running_seconds` (a new request gets 403 REQUEST_LIMIT_EXCEEDED ConcurrentRequests
while that many have run that long), `daily_limit`, `bulk_job_seconds`.

In-process API (tests, demo, benchmarks): see server.py. `create/update` there
are admin writes (no permission checks; SystemModstamp may be given to backdate,
P5), `delete` soft-deletes into the recycle bin (cascading to
contacts/opportunities/roles as Salesforce does; the bin purges by the
sandbox's clock), `purge` hard-deletes, `merge` deletes losers with
MasterRecordId and re-points children, `add_field/remove_field` change the
schema (`add_field(..., restricted=True)`: a field field-level security hides
until granted, as the Tooling API creates them), `new_session(user_id)` is a
session as another user.

Fault kinds (spec format in sandbox/common.py), as Salesforce renders them:

    status          status (default 500), errorCode, message, headers -> [{"message","errorCode"}]
                    (login: SOAP fault; token: OAuth error JSON)
    rate_limit / request_limit   403 REQUEST_LIMIT_EXCEEDED "TotalRequests Limit exceeded."
    expire_session  invalidates every current session; this request gets 401 INVALID_SESSION_ID
    latency         ms: sleep before answering
    quota           used / max: set the daily API counter (then 403 once spent)
    concurrent_limit  limit: 403 ConcurrentRequests when more than `limit` requests are in flight
    query_timeout   [window_days]: 400 QUERY_TIMEOUT (only if the SystemModstamp window is wider)
    drop_connection bytes (default 0: no response at all), apply (process the request first)
    bulk_job_state  state (Failed/Aborted/InProgress), message: forces a Bulk job's state on poll
    bulk_charset    charset (omit for none): the Content-Type charset of Bulk CSV results lies
    expire_locators drops every open query cursor: the next query_more gets 400 INVALID_QUERY_LOCATOR
    mutate          object, id (update; omit to create), fields, delete: changes the org when it
                    fires, as another user would mid-pull
    post_write      match {object, id, <field>: value}, set {field: value}: a workflow rewrites a
                    record right after an API write (W9)
    reject_write    match {object, id, op (create/update/upsert/delete), <field>: value}, code,
                    message, fields -> a per-record error (collections) or a 400 (single record)
"""

from .auth import (
    CONSUMER_KEY,
    CONSUMER_SECRET,
    PASSWORD,
    REFRESH_TOKEN,
    SECURITY_TOKEN,
    USERNAME,
)
from .server import SalesforceSandbox, serve_forever
from .store import INTEGRATION_USER_ID, WriteError

__all__ = [
    "CONSUMER_KEY",
    "CONSUMER_SECRET",
    "INTEGRATION_USER_ID",
    "PASSWORD",
    "REFRESH_TOKEN",
    "SECURITY_TOKEN",
    "USERNAME",
    "SalesforceSandbox",
    "WriteError",
    "serve_forever",
]
