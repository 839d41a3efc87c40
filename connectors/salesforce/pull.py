"""Pull Salesforce objects as Pages: full (REST or Bulk 2.0) and incremental, resumable.

Full pull (`mode: "full"`): `query` (live rows) `SELECT ... WHERE Id > :after_id
ORDER BY Id` at batchSize=2000, one Page per REST page, each carrying
`{"mode": "full", "after_id": <last Id>, "watermark": <cap>, "max_seen": ...}`
so a killed pull resumes where its last committed page ended. The first
page's totalSize sizes the object (no COUNT() call); with `bulk = "auto"` the
rest of the object moves to a Bulk 2.0 query job when that costs fewer calls
(1 create + expected polls + ceil(n / bulk_max_records) results + 1 delete vs
ceil(n / 2000) - 1 more REST pages). A job answers UploadComplete, runs
InProgress, ends JobComplete / Failed / Aborted (api-facts §9); it is polled on
our own schedule, starting short and doubling (0.5, 1, 2, 4, 8, 16, 30, 30 ...
s: a job done in a second costs one poll and waits half a second, a long one
about one poll per 30 s; docs/budgets.md). Its CSV results are streamed,
converted to REST types by describe (a CSV datetime ends in Z where REST JSON
says +0000; an empty cell is null) and cut into Pages of 2,000 with the same
cursor. A job that fails, is aborted or outlives `bulk_max_wait_seconds` is
aborted and deleted and the pull carries on over REST from the last Id (P9).

Incremental pull (`mode: "incremental"`): `queryAll` (so deletes arrive with
IsDeleted = true and merge losers with MasterRecordId) `WHERE SystemModstamp >=
:watermark - lookback ORDER BY SystemModstamp, Id`. Ties on SystemModstamp are
re-read, and the mirror's (crm, id) upsert dedupes. QUERY_TIMEOUT splits the
remaining window in two and goes on (P8); an expired query locator or a field
removed since describe restarts the query from the last position.

Watermarks come from the server only (O5): a cursor is never later than
`cap` = the server's `Date` on this pull's first response minus `skew_seconds`,
nor later than the newest SystemModstamp actually committed. A full pull
carries its first attempt's cap across resumes; its last Page (empty, `done`)
hands over `{"mode": "incremental", "watermark": min(cap, newest seen)}`: any
row changed after the pull passed its Id has a SystemModstamp at or after the
pull began, so the next incremental sees it.

Deletes older than the recycle bin (D2): the bin keeps a deleted row 15 days,
fewer when it is full (api-facts §10), and then queryAll no longer shows it. A
cursor also says when the pull that wrote it began (`pulled_at`: the server's
clock minus skew; the watermark itself stays at the newest change, which may be
old in a quiet org). An incremental more than 15 days after the last pull, or
(with `check_deleted = true`, which asks getDeleted on each incremental) whose
getDeleted answer says `earliestDateAvailable` is after the last pull (a row
deleted since was purged), sets `stats[obj].needs_reconcile`
(`missed_deletes(obj)`); sync/pull.py then lists the object's ids
(`reconcile_ids`, one query per 2,000) and retires the mirror rows that are
gone. A cursor from before `pulled_at` existed counts from its watermark.
`reconcile(obj, known_ids)` yields deletion Pages for known ids that are gone.
"""

from __future__ import annotations

import codecs
import csv
import logging
import math
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from crmsync.connectors.errors import (
    AuthFailed,
    CrmError,
    CrmUnavailable,
    MalformedRecord,
    QuotaExhausted,
)
from crmsync.connectors.retry import Sleep
from crmsync.connectors.salesforce.client import SalesforceClient, Settings, translate
from crmsync.connectors.salesforce.fields import (
    CURSOR_FIELD,
    ID,
    FieldInfo,
    ObjectMap,
    Resolved,
    field_infos,
    parse_datetime,
    soql_datetime,
    typed_value,
)
from crmsync.state.model import CrmRecord, Cursor, ObjectType, Page

log = logging.getLogger(__name__)

PAGE_SIZE = 2000
MIN_PAGE_SIZE = 200  # Sforce-Query-Options batchSize: "the minimum is 200"
# Big records (X3): a page of query results (REST) or of Bulk CSV rows is also cut so its
# text values hold about this much memory. Salesforce caps a REST page at 200 rows when two
# custom long text areas are selected and may return fewer rows for big records (SOQL
# reference, "Change the Batch Size in Queries"; help article 000386264); by how much is not
# documented, and 2,000 rows of one 60,000-character field were 1.8 GiB of peak RSS (bench/
# README.md "Big records"). So a pull asks for fewer rows up front when the selected custom
# long text areas could fill a page past this (`_batch_for`), asks for fewer again when a
# page it got was bigger, and cuts Bulk CSV into Pages by size.
PAGE_BYTES = 32 * 2**20
# A Bulk results request asks for at most this much CSV: "If you are working with a very large
# number of query results, you may experience a timeout before receiving all the data from
# Salesforce. To prevent a timeout, specify the maximum number of records your client is
# expecting to receive in the maxRecords parameter" (Bulk API 2.0, "Get Results for a Query
# Job"). 50,000 records of 60 KB would be 3 GB in one answer (in the sandbox: no answer within
# the 60 s timeout, bench/README.md "Big records"): maxRecords starts from the selected custom
# long text areas' size and then follows the bytes per row the last chunk actually had.
RESULT_BYTES = 256 * 2**20
BATCH_HEADERS = {"Sforce-Query-Options": f"batchSize={PAGE_SIZE}"}
# Seconds before each poll of a Bulk job: short first (issue 14: a 2 s first wait cost every
# small job 2 s), doubling, then every 30 s until bulk_max_wait_seconds.
BULK_POLL_SCHEDULE = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
RESTARTABLE = ("INVALID_QUERY_LOCATOR", "INVALID_FIELD", "QUERY_TIMEOUT")
MAX_RESTARTS = 8  # expired locators / fields removed mid-run, per pull
MAX_SPLITS = 64  # QUERY_TIMEOUT window halvings per pull (each window stays >= MIN_SPLIT)
MIN_SPLIT = timedelta(minutes=1)
GET_DELETED_DAYS = 15
BIN_DAYS = 15  # the recycle bin's retention: a cursor older than this may have missed deletes

# Bulk CSV cells (X3): csv's default field_size_limit, 131,072 characters, is exactly the
# longest documented Salesforce field (a long text area); one character more fails the whole
# chunk, so the limit is lifted rather than trusted to match.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass
class PullStats:
    """What one pull of one object did (for progress bars, run records and tests)."""

    object: ObjectType
    mode: str = ""
    path: str = "rest"  # "rest", "bulk", "rest+bulk", "bulk->rest" (fallback)
    total_size: int | None = None
    records: int = 0
    pages: int = 0
    malformed: int = 0
    problems: Counter[str] = field(default_factory=Counter)  # "<field>: <problem>" -> records
    bulk_fallback: str | None = None
    windows_split: int = 0
    needs_reconcile: bool = False


@dataclass
class _Full:
    after_id: str | None
    cap: datetime | None
    max_seen: datetime | None

    def cursor(self) -> dict[str, Any]:
        return {
            "mode": "full",
            "after_id": self.after_id,
            "watermark": _iso(self.cap),
            "max_seen": _iso(self.max_seen),
        }

    def handover(self) -> dict[str, Any]:
        marks = [d for d in (self.cap, self.max_seen) if d is not None]
        return {
            "mode": "incremental",
            "watermark": _iso(min(marks)) if marks else None,
            "pulled_at": _iso(self.cap),
        }


class _BulkFailed(Exception):
    def __init__(self, message: str, *, ended: bool = False) -> None:
        super().__init__(message)
        self.ended = ended  # the job is already in a final state: no abort needed


_ID_RE = re.compile(r"[A-Za-z0-9]{15,18}")


def _after(after_id: str | None) -> str | None:
    """The resume clause of a full pull; the id comes from a stored cursor, so check it."""
    if not after_id:
        return None
    if not _ID_RE.fullmatch(after_id):
        raise ValueError(f"salesforce cursor after_id {after_id!r} is not a Salesforce Id")
    return f"Id > '{after_id}'"


def _sub_error(status: int, body: Any) -> CrmError:
    """A failed /composite subrequest as the error the same request alone would raise."""
    code, message = None, ""
    if isinstance(body, list) and body and isinstance(body[0], Mapping):
        code, message = body[0].get("errorCode"), str(body[0].get("message") or "")
    kw: dict[str, Any] = {
        "crm": "salesforce",
        "operation": "query",
        "status": status,
        "code": code,
        "detail": message,
    }
    if status == 401:
        # the outer call was accepted, so the session is fine: a retry will do
        return CrmUnavailable(f"Salesforce composite subrequest refused ({code})", **kw)
    if status >= 500 or status == 429:
        return CrmUnavailable(
            f"Salesforce unavailable in a composite subrequest (HTTP {status})", **kw
        )
    if status == 403 and code == "REQUEST_LIMIT_EXCEEDED" and "concurrent" not in message.lower():
        return QuotaExhausted(f"Salesforce daily API allocation exhausted ({code})", **kw)
    return CrmError(
        f"Salesforce refused a query page (HTTP {status}" + (f" {code})" if code else ")"), **kw
    )


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).isoformat()


def _dt(value: Any) -> datetime | None:
    try:
        return parse_datetime(value)
    except (ValueError, TypeError):
        return None


class Puller:
    """Pulls for one connector instance: describes each object once, then pages."""

    def __init__(
        self,
        client: SalesforceClient,
        settings: Settings,
        maps: Mapping[ObjectType, ObjectMap],
        *,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.client = client
        self.settings = settings
        self.maps = maps
        self.sleep = sleep
        self._resolved: dict[ObjectType, Resolved] = {}
        self.stats: dict[ObjectType, PullStats] = {}
        self._warned: set[tuple[str, str, str]] = set()  # each problem warns once per run

    # -------------------------------------------------------------- schema

    def resolved(self, obj: ObjectType) -> Resolved:
        """The object's map narrowed to fields the org has; warns once about the rest (X5).

        An sObject the org does not offer (describe says NOT_FOUND / INVALID_TYPE,
        e.g. no Opportunities) resolves to no fields: its pull yields nothing.
        """
        if obj not in self._resolved:
            m = self.maps[obj]
            try:
                infos = field_infos(self.client.describe(m.sobject))
            except CrmError as exc:
                if isinstance(exc, CrmUnavailable | QuotaExhausted | AuthFailed):
                    raise
                if exc.status != 404 and exc.code not in ("NOT_FOUND", "INVALID_TYPE"):
                    raise
                log.warning(
                    "salesforce object %s is not available to the integration user; skipped",
                    m.sobject,
                    extra={"crm": "salesforce", "object": m.sobject, "code": exc.code},
                )
                infos = {}
            res = m.resolve(infos)
            if res.missing:
                log.warning(
                    "salesforce fields missing; left out of the pull",
                    extra={"crm": "salesforce", "object": m.sobject, "fields": list(res.missing)},
                )
            self._resolved[obj] = res
        return self._resolved[obj]

    def refresh(self, obj: ObjectType) -> Resolved:
        """Describe `obj` afresh (its kept describe goes too)."""
        self.client.forget_describe(self.maps[obj].sobject)
        self._resolved.pop(obj, None)
        return self.resolved(obj)

    # -------------------------------------------------------------- entry

    def pull(
        self, obj: ObjectType, cursor: Cursor | None, *, full: bool, started_at: datetime
    ) -> Iterator[Page]:
        res = self.resolved(obj)
        stats = self.stats[obj] = PullStats(obj)
        if not res.infos:
            stats.mode = "skipped"
            yield Page(obj, [], cursor, done=True)
            return
        if res.filter_missing:
            log.warning(
                "salesforce %s has no %s field; nothing to pull (run `crmsync setup`)",
                res.sobject,
                res.map.filter_field,
                extra={"crm": "salesforce", "object": res.sobject},
            )
            stats.mode = "skipped"
            yield Page(obj, [], cursor, done=True)
            return
        mode = (cursor or {}).get("mode")
        if mode == "full":
            stats.mode = "full"
            state = _Full(
                after_id=cursor.get("after_id"),  # type: ignore[union-attr]
                cap=_dt(cursor.get("watermark")),  # type: ignore[union-attr]
                max_seen=_dt(cursor.get("max_seen")),  # type: ignore[union-attr]
            )
            yield from self._full(obj, state, started_at)
        elif full or not cursor or not cursor.get("watermark"):
            stats.mode = "full"
            yield from self._full(obj, _Full(None, None, None), started_at)
        else:
            stats.mode = "incremental"
            watermark = _dt(cursor["watermark"])
            if watermark is None:
                raise ValueError(f"salesforce cursor for {obj} has an unreadable watermark")
            pulled_at = _dt(cursor.get("pulled_at")) or watermark
            yield from self._incremental(obj, watermark, started_at, pulled_at=pulled_at)

    # -------------------------------------------------------------- shared

    def _server_cap(self, started_at: datetime) -> datetime:
        """The newest a cursor may be: the server's clock at the pull's start minus skew."""
        now = self.client.server_time or started_at
        return now - self.settings.skew

    def _select(self, res: Resolved, where: Iterable[str | None], order: str) -> str:
        clauses = [w for w in where if w]
        soql = f"SELECT {', '.join(res.select)} FROM {res.sobject}"
        if clauses:
            soql += " WHERE " + " AND ".join(clauses)
        return soql + f" ORDER BY {order}"

    def _records(
        self, obj: ObjectType, res: Resolved, raws: Iterable[Mapping[str, Any]]
    ) -> list[CrmRecord]:
        """Map raw records; skip and count the unmappable, log field problems by id."""
        stats = self.stats[obj]
        out: list[CrmRecord] = []
        problems: dict[tuple[str, str], list[str]] = defaultdict(list)
        for raw in raws:
            try:
                record, found = res.to_record(raw)
            except MalformedRecord as exc:
                stats.malformed += 1
                log.warning(
                    "skipped malformed salesforce record: %s",
                    exc,
                    extra={"crm": "salesforce", "object": res.sobject, "record_id": exc.record_id},
                )
                continue
            for problem in found:
                problems[problem].append(record.id)
            out.append(record)
        for (fname, what), ids in problems.items():
            stats.problems[f"{fname}: {what}"] += len(ids)
            first = (res.sobject, fname, what) not in self._warned
            self._warned.add((res.sobject, fname, what))
            log.log(
                logging.WARNING if first else logging.DEBUG,
                "salesforce %s.%s: %s in %d record(s)",
                res.sobject,
                fname,
                what,
                len(ids),
                extra={
                    "crm": "salesforce",
                    "object": res.sobject,
                    "field": fname,
                    "problem": what,
                    "records": len(ids),
                    "record_ids": ids[:5],
                },
            )
        stats.records += len(out)
        stats.pages += 1
        return out

    def _pages(
        self, soql: str, *, include_deleted: bool, batch: int = PAGE_SIZE
    ) -> Iterator[Mapping[str, Any]]:
        """REST pages of one SOQL query (each page one counted call, each retried alone).

        With `composite_pages` > 1 the pages after the first are fetched up to
        five at a time through /composite, each subrequest following the
        previous one's nextRecordsUrl: one API call per chain. `batch` is the
        batchSize asked for; a page whose values hold more than PAGE_BYTES makes
        the next requests ask for proportionally fewer rows (X3).
        """
        headers = _batch_headers(batch)
        page = self.client.query(soql, include_deleted=include_deleted, headers=headers)
        total = int(page.get("totalSize") or 0)
        seen = 0
        while True:
            yield page
            rows = page.get("records") or ()
            seen += len(rows)
            batch = _smaller_batch(batch, rows)
            headers = _batch_headers(batch)
            if page.get("done", True) or not page.get("nextRecordsUrl"):
                return
            chain = self.settings.composite_pages
            if chain <= 1:
                page = self.client.query_more(page["nextRecordsUrl"], headers=headers)
                continue
            per_page = max(1, len(rows))
            wanted = max(1, min(chain, math.ceil(max(total - seen, 1) / per_page)))
            pages = self._chained(page["nextRecordsUrl"], wanted, headers)
            for page in pages[:-1]:
                yield page
                seen += len(page.get("records") or ())
            page = pages[-1]

    def _chained(
        self, next_url: str, n: int, headers: Mapping[str, str] = BATCH_HEADERS
    ) -> list[Mapping[str, Any]]:
        """Up to n query pages in one /composite call, stopping at the last page."""
        subrequests = [
            {
                "method": "GET",
                "url": next_url if i == 0 else f"@{{p{i - 1}.nextRecordsUrl}}",
                "referenceId": f"p{i}",
                "httpHeaders": dict(headers),
            }
            for i in range(n)
        ]

        def fetch(sf: Any) -> list[Mapping[str, Any]]:
            body = sf.restful(
                "composite",
                method="POST",
                json={"allOrNone": False, "compositeRequest": subrequests},
            )
            pages: list[Mapping[str, Any]] = []
            for sub in (body or {}).get("compositeResponse") or ():
                status = int(sub.get("httpStatusCode") or 0)
                if status < 400:
                    pages.append(sub.get("body") or {})
                    continue
                if pages and (pages[-1].get("done", True) or not pages[-1].get("nextRecordsUrl")):
                    break  # the chain ran past the last page: nothing lost
                raise _sub_error(status, sub.get("body"))
            if not pages:
                raise CrmUnavailable(
                    "Salesforce /composite returned no query page",
                    crm="salesforce",
                    operation="query",
                )
            return pages

        return self.client.call("query", fetch)

    # -------------------------------------------------------------- full

    def _full(self, obj: ObjectType, st: _Full, started_at: datetime) -> Iterator[Page]:
        stats = self.stats[obj]
        use_bulk = self.settings.bulk == "always"
        may_switch = self.settings.bulk == "auto"
        restarts = 0
        while True:
            if use_bulk:
                stats.path = "bulk" if stats.pages == 0 else "rest+bulk"
                try:
                    yield from self._bulk(obj, st, started_at)
                    break
                except _BulkFailed as exc:
                    stats.bulk_fallback = str(exc)
                    stats.path = "bulk->rest"
                    use_bulk = may_switch = False
                    log.warning(
                        "salesforce bulk query failed; continuing over REST: %s",
                        exc,
                        extra={
                            "crm": "salesforce",
                            "object": self.maps[obj].sobject,
                            "after_id": st.after_id,
                        },
                    )
                    continue
            try:
                switched = yield from self._full_rest(obj, st, started_at, may_switch=may_switch)
            except CrmError as exc:
                if exc.code not in RESTARTABLE or restarts >= MAX_RESTARTS:
                    raise
                restarts += 1
                may_switch = False
                if exc.code == "INVALID_FIELD":
                    self.refresh(obj)
                continue
            if not switched:
                break
            use_bulk = True
        yield Page(obj, [], st.handover(), done=True)

    def _full_rest(
        self, obj: ObjectType, st: _Full, started_at: datetime, *, may_switch: bool
    ) -> Generator[Page, None, bool]:
        """REST pages from st.after_id; returns True when the rest should go to Bulk."""
        res = self.resolved(obj)
        stats = self.stats[obj]
        soql = self._select(res, (res.filter_clause, _after(st.after_id)), "Id")
        first = True
        for page in self._pages(soql, include_deleted=False, batch=_batch_for(res)):
            if first:
                cap = self._server_cap(started_at)
                st.cap = min(st.cap, cap) if st.cap else cap
                if stats.total_size is None:
                    stats.total_size = int(page.get("totalSize") or 0)
            records = self._records(obj, res, page.get("records") or ())
            self._advance(st, records, page.get("records") or ())
            yield Page(obj, records, st.cursor())
            if (
                first
                and may_switch
                and not page.get("done", True)
                and self._bulk_is_cheaper(page, res)
            ):
                return True
            first = False
        return False

    def _advance(
        self, st: _Full, records: list[CrmRecord], raws: Iterable[Mapping[str, Any]]
    ) -> None:
        last = None
        for raw in raws:  # the last Id of the page, even if that record was malformed
            last = raw.get(ID) or last
        if last:
            st.after_id = str(last)
        for r in records:
            if r.modified_at and (st.max_seen is None or r.modified_at > st.max_seen):
                st.max_seen = r.modified_at

    def _bulk_is_cheaper(self, first_page: Mapping[str, Any], res: Resolved) -> bool:
        if self.settings.bulk != "auto":
            return False
        got = len(first_page.get("records") or ())
        remaining = int(first_page.get("totalSize") or 0) - got
        if remaining <= 0:
            return False
        # the page size Salesforce actually gave (200 with two long text areas, X3), not
        # the 2,000 asked for
        rest_calls = math.ceil(remaining / max(1, got))
        return bulk_cost(remaining, _bulk_chunk(res, self.settings.bulk_max_records)) < rest_calls

    # -------------------------------------------------------------- bulk

    def _bulk(self, obj: ObjectType, st: _Full, started_at: datetime) -> Iterator[Page]:
        res = self.resolved(obj)
        soql = self._select(res, (res.filter_clause, _after(st.after_id)), "Id")
        job = self._bulk_call(
            "jobs/query",
            method="POST",
            json={
                "operation": "query",
                "query": soql,
                "contentType": "CSV",
                "columnDelimiter": "COMMA",
                "lineEnding": "LF",
            },
        )
        job_id = str(job["id"])
        cap = self._server_cap(started_at)
        st.cap = min(st.cap, cap) if st.cap else cap
        needs_abort = True
        try:
            self._wait(job_id)
            yield from self._bulk_results(obj, res, job_id, st)
            needs_abort = False
        except _BulkFailed as exc:
            needs_abort = not exc.ended
            raise
        finally:
            self._dispose(job_id, aborted=needs_abort)

    def _bulk_call(self, path: str, **kwargs: Any) -> Any:
        """A Bulk 2.0 JSON call; a refusal that REST could survive becomes _BulkFailed."""
        try:
            return self.client.restful(path, operation="bulk", **kwargs) or {}
        except (CrmUnavailable, QuotaExhausted, AuthFailed):
            raise
        except CrmError as exc:
            raise _BulkFailed(f"{path}: {exc.code or exc}") from exc

    def _wait(self, job_id: str) -> None:
        """Poll the job on our schedule until JobComplete; _BulkFailed on failure or timeout."""
        waited = 0.0
        step = 0
        while True:
            delay = BULK_POLL_SCHEDULE[min(step, len(BULK_POLL_SCHEDULE) - 1)]
            if waited + delay > self.settings.bulk_max_wait_seconds:
                raise _BulkFailed(f"job {job_id} not complete after {waited:.0f}s")
            self.sleep(delay)
            waited += delay
            step += 1
            info = self._bulk_call(f"jobs/query/{job_id}")
            state = info.get("state")
            if state == "JobComplete":
                return
            if state in ("Failed", "Aborted"):
                message = f"job {job_id} {state}: {info.get('errorMessage') or ''}".strip()
                raise _BulkFailed(message, ended=True)

    def _dispose(self, job_id: str, *, aborted: bool) -> None:
        """Abort (when unfinished) and delete the job so no orphan is left behind (P9)."""
        steps: list[tuple[str, dict[str, str] | None]] = []
        if aborted:
            steps.append(("PATCH", {"state": "Aborted"}))
        steps.append(("DELETE", None))
        for method, body in steps:
            try:
                kwargs: dict[str, Any] = {"method": method}
                if body is not None:
                    kwargs["json"] = body
                self.client.restful(f"jobs/query/{job_id}", operation="bulk", **kwargs)
            except CrmError as exc:
                log.warning(
                    "could not %s salesforce bulk job %s: %s",
                    method.lower(),
                    job_id,
                    exc.code,
                    extra={"crm": "salesforce", "job_id": job_id},
                )
                if isinstance(exc, QuotaExhausted | AuthFailed):
                    return

    def _bulk_results(
        self, obj: ObjectType, res: Resolved, job_id: str, st: _Full
    ) -> Iterator[Page]:
        locator: str | None = None
        max_records = _bulk_chunk(res, self.settings.bulk_max_records)
        while True:
            params: dict[str, Any] = {"maxRecords": max_records}
            if locator:
                params["locator"] = locator
            consumed = 0  # rows of this chunk already yielded: skipped if it is re-read
            attempts = 0
            read = [0]  # bytes of this chunk's body
            while True:
                response = self.client.raw(
                    "GET",
                    f"jobs/query/{job_id}/results",
                    operation="bulk",
                    params=params,
                    headers={"Accept": "text/csv"},
                    stream=True,
                )
                try:
                    skip = consumed
                    read[0] = 0
                    for raws in _csv_batches(response, res.infos, PAGE_SIZE, read):
                        if skip >= len(raws):
                            skip -= len(raws)
                            continue
                        raws, skip = raws[skip:], 0
                        records = self._records(obj, res, raws)
                        self._advance(st, records, raws)
                        consumed += len(raws)
                        yield Page(obj, records, st.cursor())
                    break
                except (requests.RequestException, OSError) as exc:  # connection lost mid-body
                    err = translate(exc, "bulk")
                    attempts += 1
                    if (
                        not isinstance(err, CrmUnavailable)
                        or attempts >= self.client.retry.max_attempts
                    ):
                        raise (err or exc) from exc
                    log.warning(
                        "salesforce bulk results interrupted; re-reading the chunk",
                        extra={"crm": "salesforce", "job_id": job_id, "attempt": attempts},
                    )
                    self.sleep(min(2.0**attempts, 30.0))
                finally:
                    response.close()  # also when the consumer stops early
            locator = response.headers.get("Sforce-Locator")
            if not locator or locator == "null":
                return
            if consumed and read[0]:  # X3: as many rows as RESULT_BYTES holds at this size
                per_row = read[0] / consumed
                max_records = max(
                    1, min(self.settings.bulk_max_records, int(RESULT_BYTES // per_row))
                )

    # -------------------------------------------------------------- incremental

    def _incremental(
        self, obj: ObjectType, watermark: datetime, started_at: datetime, *, pulled_at: datetime
    ) -> Iterator[Page]:
        res = self.resolved(obj)
        stats = self.stats[obj]
        windows: list[tuple[datetime, datetime | None]] = [
            (watermark - self.settings.lookback, None)
        ]
        cap: datetime | None = None
        newest = watermark  # the cursor never moves back
        restarts = 0
        while windows:
            lo, hi = windows.pop(0)
            position = lo
            try:
                where = [res.filter_clause, f"{CURSOR_FIELD} >= {soql_datetime(lo)}"]
                if hi is not None:
                    where.append(f"{CURSOR_FIELD} < {soql_datetime(hi)}")
                soql = self._select(res, where, f"{CURSOR_FIELD}, Id")
                for page in self._pages(soql, include_deleted=True, batch=_batch_for(res)):
                    if cap is None:
                        cap = self._server_cap(started_at)
                        stats.total_size = int(page.get("totalSize") or 0)
                    records = self._records(obj, res, page.get("records") or ())
                    for r in records:
                        if r.modified_at is not None:
                            position = max(position, r.modified_at)
                    newest = max(newest, min(position, cap))
                    yield Page(obj, records, self._cursor(newest, cap))
            except CrmError as exc:
                if exc.code not in RESTARTABLE:
                    raise
                if exc.code == "QUERY_TIMEOUT":
                    end = hi or self.client.server_time or datetime.now(UTC)
                    if end - position < MIN_SPLIT or stats.windows_split >= MAX_SPLITS:
                        raise
                    mid = position + (end - position) / 2
                    stats.windows_split += 1
                    log.warning(
                        "salesforce query timed out; splitting the window",
                        extra={
                            "crm": "salesforce",
                            "object": res.sobject,
                            "from": _iso(position),
                            "to": _iso(mid),
                        },
                    )
                    windows[0:0] = [(position, mid), (mid, hi)]
                    continue
                if restarts >= MAX_RESTARTS:
                    raise
                restarts += 1
                if exc.code == "INVALID_FIELD":
                    res = self.refresh(obj)
                windows.insert(0, (position, hi))
        if cap is None:
            cap = self._server_cap(started_at)
        server_now = self.client.server_time or started_at
        since = pulled_at - self.settings.lookback
        if res.map.deleted_field and server_now - since > timedelta(days=BIN_DAYS):
            stats.needs_reconcile = True  # away longer than the recycle bin keeps deletes (D2)
        if self.settings.check_deleted:
            yield from self._get_deleted(obj, since, self._cursor(newest, cap))
        yield Page(obj, [], self._cursor(newest, cap), done=True)

    @staticmethod
    def _cursor(watermark: datetime, cap: datetime) -> dict[str, Any]:
        return {"mode": "incremental", "watermark": _iso(watermark), "pulled_at": _iso(cap)}

    def _get_deleted(
        self, obj: ObjectType, since: datetime, cursor: dict[str, Any]
    ) -> Iterator[Page]:
        """Ids deleted since the last pull began (getDeleted), hard deletes included (D2).

        `earliestDateAvailable` is "the timestamp (UTC) of the last physically deleted
        object" (SOAP GetDeletedResult; api-facts §10): after `since`, a row deleted after
        the last pull was purged before this one could see it."""
        res = self.resolved(obj)
        now = self.client.server_time or datetime.now(UTC)
        earliest_allowed = now - timedelta(days=GET_DELETED_DAYS) + timedelta(minutes=5)
        start = max(since, earliest_allowed)
        if start > since:
            self.stats[obj].needs_reconcile = True
        body = (
            self.client.restful(
                f"sobjects/{res.sobject}/deleted/",
                operation="get_deleted",
                params={
                    "start": start.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
                    "end": now.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
                },
            )
            or {}
        )
        earliest = _dt(body.get("earliestDateAvailable"))
        if earliest is not None and earliest > since:
            self.stats[obj].needs_reconcile = True
            log.warning(
                "salesforce delete log starts after the cursor; run a reconcile",
                extra={"crm": "salesforce", "object": res.sobject},
            )
        records = [
            CrmRecord(
                obj,
                str(d["id"]),
                _dt(d.get("deletedDate")),
                deleted=True,
                raw={"Id": d["id"], "IsDeleted": True},
            )
            for d in body.get("deletedRecords") or ()
            if d.get("id")
        ]
        if records:
            yield Page(obj, records, cursor)

    # -------------------------------------------------------------- reconcile

    def reconcile_ids(self, obj: ObjectType) -> Iterator[str]:
        """Every live Id of the object (Tasks: those with crmsync's key), streamed."""
        res = self.resolved(obj)
        if res.filter_missing:
            return
        where = f" WHERE {res.filter_clause}" if res.filter_clause else ""
        soql = f"SELECT Id FROM {res.sobject}{where} ORDER BY Id"
        for page in self._pages(soql, include_deleted=False):
            for raw in page.get("records") or ():
                if raw.get(ID):
                    yield str(raw[ID])

    def reconcile(self, obj: ObjectType, known_ids: Iterable[str]) -> Iterator[Page]:
        """Deletion Pages for known ids that no longer exist in Salesforce (cursor None)."""
        gone = set(known_ids)
        for rid in self.reconcile_ids(obj):
            gone.discard(rid)
        batch: list[CrmRecord] = []
        for rid in sorted(gone):
            batch.append(
                CrmRecord(obj, rid, None, deleted=True, raw={"Id": rid, "IsDeleted": True})
            )
            if len(batch) >= PAGE_SIZE:
                yield Page(obj, batch, None)
                batch = []
        yield Page(obj, batch, None, done=True)


# ------------------------------------------------------------------ bulk helpers


def job_seconds(rows: int) -> float:
    """How long a Bulk 2.0 query job of `rows` is expected to run (a model, not a measurement:
    10 s + 1 s per 10k rows; the standalone sandbox runs its jobs the same)."""
    return 10.0 + rows / 10_000


def polls_for(seconds: float) -> int:
    """Polls our schedule spends on a job that completes after `seconds`."""
    waited, polls = 0.0, 0
    while True:
        waited += BULK_POLL_SCHEDULE[min(polls, len(BULK_POLL_SCHEDULE) - 1)]
        polls += 1
        if waited >= seconds:
            return polls


def expected_polls(rows: int) -> int:
    """Polls our schedule spends on a job of `rows` rows (job_seconds' latency model)."""
    return polls_for(job_seconds(rows))


def bulk_cost(rows: int, max_records: int) -> int:
    """Calls a Bulk 2.0 query of `rows` costs: create + polls + result pages + delete."""
    return 1 + expected_polls(rows) + max(1, math.ceil(rows / max_records)) + 1


def _lines(response: requests.Response, read: list[int] | None = None) -> Iterator[str]:
    """The body as text lines split on LF only (CR/LF inside quoted CSV fields survive);
    `read[0]` counts the bytes read."""
    decoder = codecs.getincrementaldecoder("utf-8")(
        errors="replace"
    )  # X2: UTF-8 whatever the header says
    buffer = ""
    for chunk in response.iter_content(chunk_size=64 * 1024):
        if read is not None:
            read[0] += len(chunk)
        buffer += decoder.decode(chunk)
        start = 0
        while (end := buffer.find("\n", start)) >= 0:
            yield buffer[start : end + 1]
            start = end + 1
        buffer = buffer[start:]
    buffer += decoder.decode(b"", final=True)
    if buffer:
        yield buffer


def _csv_batches(
    response: requests.Response,
    infos: Mapping[str, FieldInfo],
    size: int,
    read: list[int] | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Stream one Bulk results chunk as batches of REST-shaped records: `size` rows, or
    fewer when their values hold PAGE_BYTES (X3)."""
    reader = csv.reader(_lines(response, read))
    header = next(reader, None)
    if not header:
        return
    types = [infos.get(h.lower()) for h in header]
    batch: list[dict[str, Any]] = []
    held = 0
    for row in reader:
        if not row:
            continue
        batch.append({h: typed_value(t, v) for h, t, v in zip(header, types, row, strict=False)})
        held += sum(sys.getsizeof(v) for v in row if len(v) > 64)
        if len(batch) >= size or held >= PAGE_BYTES:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


def _batch_headers(batch: int) -> dict[str, str]:
    return {"Sforce-Query-Options": f"batchSize={batch}"}


def _batch_for(res: Resolved) -> int:
    """The batchSize to ask for first: PAGE_SIZE, or fewer rows when the selected custom
    long text areas, full, would hold more than PAGE_BYTES on a page (X3)."""
    per_row = res.long_text_chars
    if not per_row:
        return PAGE_SIZE
    return max(MIN_PAGE_SIZE, min(PAGE_SIZE, PAGE_BYTES // (per_row + 2048)))


def _bulk_chunk(res: Resolved, max_records: int) -> int:
    """maxRecords for the first Bulk results request: `max_records`, or as many rows of the
    selected custom long text areas, full, as RESULT_BYTES holds (X3)."""
    per_row = res.long_text_chars
    if not per_row:
        return max_records
    return max(1, min(max_records, RESULT_BYTES // (per_row + 2048)))


def _smaller_batch(batch: int, rows: Iterable[Mapping[str, Any]]) -> int:
    """`batch`, or fewer rows when this page's text values held more than PAGE_BYTES."""
    rows = list(rows)
    if not rows:
        return batch
    held = sum(
        sys.getsizeof(v) for r in rows for v in r.values() if isinstance(v, str) and len(v) > 64
    )
    if held <= PAGE_BYTES:
        return batch
    return max(MIN_PAGE_SIZE, min(batch, len(rows) * PAGE_BYTES // held))
