"""Bulk API 2.0 query jobs: create, poll, CSV results by locator, abort, delete.

Lifecycle (Bulk API 2.0 guide, "Get Information About a Query Job" and the
query walkthrough; api-facts §9): a created job answers `UploadComplete`, is
`InProgress` while Salesforce runs it, then `JobComplete` (or `Failed` /
`Aborted`). A job snapshots its matching rows when created and its duration
is fixed then: `duration(rows)` seconds (the sandbox's `bulk_job_seconds`
plus `bulk_job_seconds_per_10k_rows`), measured by the sandbox's clock, so
tests move time instead of sleeping. It is `UploadComplete` for the first
tenth of that (at most `QUEUED_SECONDS`), `InProgress` after. Results asked
for before `JobComplete` answer 412 JOB_NOT_COMPLETE with the documented
message ("Get Results for a Query Job", older versions of the page).

Results are CSV with the header repeated in every chunk,
`Sforce-NumberOfRecords` and `Sforce-Locator` ("null" on the last chunk), as
simple-salesforce's bulk2 reader requires (api-facts §19). Cell formats
differ from REST JSON (api-facts §9): a datetime is `2024-09-24T03:26:07.000Z`
where REST says `...000+0000` (estuary/connectors PR #2519, from a live org);
null is an empty field, indistinguishable from an empty string; booleans are
`true` / `false`; dates `YYYY-MM-DD`; numbers plain text.
"""

from __future__ import annotations

import base64
import csv
import io
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crmsync.sandbox.common import sf_id

from .compound import BULK_COMPOUND_MESSAGE, is_compound
from .schema import format_datetime, parse_datetime
from .soql import CompiledQuery, compile_query
from .store import Row, Store, WriteError

DELIMITERS = {"COMMA": ",", "TAB": "\t", "SEMICOLON": ";", "PIPE": "|", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
MAX_JOB_ROWS = 5_000_000  # result rows held by jobs that were never deleted
QUEUED_SECONDS = 2.0  # a job answers UploadComplete at most this long before InProgress


@dataclass
class QueryJob:
    id: str
    operation: str
    query: CompiledQuery
    rows: list[Row]
    created_at: datetime
    version: str
    line_ending: str = "LF"
    delimiter: str = "COMMA"
    duration: float = 0.0  # seconds from creation to JobComplete on the sandbox clock
    forced_state: str | None = None
    error_message: str | None = None
    polls: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class BulkJobs:
    def __init__(self, store: Store, duration: Callable[[int], float]) -> None:
        """`duration(rows)`: seconds a job of that many result rows runs (sandbox clock)."""
        self.store = store
        self.duration = duration
        self.jobs: dict[str, QueryJob] = {}
        self._lock = threading.Lock()
        self._n = 0

    def create(self, body: dict[str, Any], version: str) -> QueryJob:
        operation = body.get("operation", "query")
        if operation not in ("query", "queryAll"):
            raise WriteError("INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
        delimiter = body.get("columnDelimiter", "COMMA")
        line_ending = body.get("lineEnding", "LF")
        if delimiter not in DELIMITERS or line_ending not in LINE_ENDINGS:
            raise WriteError("INVALIDJOB", "InvalidJob : invalid columnDelimiter or lineEnding")
        text = body.get("query") or ""
        compiled = compile_query(self.store, text)
        if compiled.count_only or compiled.aggregates:
            raise WriteError("INVALIDJOB", "InvalidJob : Aggregate queries are not supported by Bulk API 2.0")
        if any(is_compound(p.field.type) for p in compiled.paths):
            raise WriteError("INVALID_FIELD", BULK_COMPOUND_MESSAGE)
        with self.store.lock:
            rows = compiled.run(include_deleted=operation == "queryAll")
        with self._lock:
            self._n += 1
            job = QueryJob(
                id=sf_id("750", self._n),
                operation=operation,
                query=compiled,
                rows=rows,
                created_at=self.store.now(),
                version=version,
                line_ending=line_ending,
                delimiter=delimiter,
                duration=max(0.0, float(self.duration(len(rows)))),
            )
            self.jobs[job.id] = job
            held = sum(len(j.rows) for j in self.jobs.values())
            while len(self.jobs) > 1 and held > MAX_JOB_ROWS:  # oldest jobs expire first
                old = self.jobs.pop(next(iter(self.jobs)))
                held -= len(old.rows)
        return job

    def get(self, job_id: str) -> QueryJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise WriteError("NOT_FOUND", "Job not found", status=404)
        return job

    def state(self, job: QueryJob) -> str:
        if job.forced_state:
            return job.forced_state
        elapsed = (self.store.now() - job.created_at).total_seconds()
        if elapsed >= job.duration:
            return "JobComplete"
        return "InProgress" if elapsed >= min(QUEUED_SECONDS, job.duration / 10) else "UploadComplete"

    def info(self, job: QueryJob, *, poll: bool = False) -> dict[str, Any]:
        if poll:
            job.polls += 1
        state = self.state(job)
        out: dict[str, Any] = {
            "id": job.id,
            "operation": job.operation,
            "object": job.query.table.name,
            "createdById": self.store.running_user_id,
            "createdDate": format_datetime(job.created_at),
            "systemModstamp": format_datetime(job.created_at),
            "state": state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(job.version),
            "jobType": "V2Query",
            "lineEnding": job.line_ending,
            "columnDelimiter": job.delimiter,
            "numberRecordsProcessed": len(job.rows) if state == "JobComplete" else 0,
            "retries": 0,
            "totalProcessingTime": 0,
        }
        if state == "Failed":
            out["errorMessage"] = job.error_message or "Job failed"
        return out

    def abort(self, job: QueryJob) -> None:
        if self.state(job) in ("JobComplete", "Failed", "Aborted"):
            raise WriteError("INVALIDJOBSTATE", f"Job {job.id} cannot be aborted in state {self.state(job)}")
        job.forced_state = "Aborted"

    def delete(self, job: QueryJob) -> None:
        with self._lock:
            self.jobs.pop(job.id, None)

    def results(self, job: QueryJob, locator: str | None, max_records: int | None) -> tuple[str, int, str]:
        """One chunk: (csv text, rows in it, next locator or "null")."""
        state = self.state(job)
        if state != "JobComplete":
            # The documented 412 body (api-facts §9): "can only download query results of
            # successfully completed bulk job with status: JOB_COMPLETE. Current status: IN_PROGRESS"
            status = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", state).upper()
            raise WriteError(
                "JOB_NOT_COMPLETE" if state in ("UploadComplete", "InProgress") else "INVALIDJOBSTATE",
                "can only download query results of successfully completed bulk job with "
                f"status: JOB_COMPLETE. Current status: {status}",
                status=412 if state in ("UploadComplete", "InProgress") else 400,
            )
        start = _decode_locator(locator)
        total = len(job.rows)
        size = max_records if max_records and max_records > 0 else total or 1
        chunk = job.rows[start : start + size]
        end = start + len(chunk)
        text = self._csv(job, chunk)
        next_locator = _encode_locator(end) if end < total else "null"
        return text, len(chunk), next_locator

    def _csv(self, job: QueryJob, rows: list[Row]) -> str:
        buf = io.StringIO()
        writer = csv.writer(
            buf,
            delimiter=DELIMITERS[job.delimiter],
            lineterminator=LINE_ENDINGS[job.line_ending],
            quoting=csv.QUOTE_ALL,
        )
        paths = job.query.paths
        writer.writerow([p.name for p in paths])
        getters = [p.getter for p in paths]
        cells = [_datetime_cell if p.field.type == "datetime" else _cell for p in paths]
        with self.store.lock:
            for row in rows:
                writer.writerow([c(g(row)) for c, g in zip(cells, getters, strict=True)])
        return buf.getvalue()


def _cell(v: Any) -> str:
    """A CSV cell: null is empty, booleans true/false, the rest as text (api-facts §9)."""
    if v is None:
        return ""
    if v is True:
        return "true"
    if v is False:
        return "false"
    return str(v)


def _datetime_cell(v: Any) -> str:
    """`...000Z` in Bulk CSV where REST JSON says `...000+0000` (estuary/connectors PR #2519)."""
    if v is None or v == "":
        return ""
    text = str(v)
    if text.endswith("+0000"):
        return text[:-5] + "Z"
    try:
        return format_datetime(parse_datetime(text))[:-5] + "Z"
    except ValueError:
        return text  # a malformed value a dataset planted (X8): served as stored


def _encode_locator(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode().rstrip("=")


def _decode_locator(locator: str | None) -> int:
    if not locator or locator == "null":
        return 0
    try:
        return int(base64.urlsafe_b64decode(locator + "=" * (-len(locator) % 4)).decode())
    except ValueError:
        raise WriteError("INVALID_LOCATOR", f"Invalid locator: {locator}") from None
