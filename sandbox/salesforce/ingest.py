"""Bulk API 2.0 ingest jobs: create, upload one CSV, close, poll, per-row results.

The flow simple-salesforce's `sf.bulk2.<Object>.insert/update/upsert/delete`
drives: POST jobs/ingest (state Open), PUT .../batches with the CSV (201),
PATCH {"state": "UploadComplete"}, polls until JobComplete, then
successfulResults / failedResults / unprocessedrecords as CSV.

Rows are applied when the job is closed, each through the same validation as
REST writes (so a bad row fails alone, RELIABILITY W6); the job reports
JobComplete `job_seconds` later on the store's clock. CSV rules as Salesforce's:
an empty cell leaves the field unchanged, `#N/A` sets it to null; fields keep
their length limits (a 40,000-character value in a 32,000 text area fails its
row with STRING_TOO_LONG).
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crmsync.sandbox.common import sf_id

from .bulk import DELIMITERS, LINE_ENDINGS
from .schema import format_datetime
from .store import Store, Table, WriteError

OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")

# Applies one CSV row: (table, values, operation, external id field) -> (id, created); raises WriteError.
RowWriter = Callable[[Table, dict[str, Any], str, str | None], tuple[str, bool]]


@dataclass
class IngestJob:
    id: str
    operation: str
    table: Table
    external_id: str | None
    created_at: datetime
    version: str
    line_ending: str = "LF"
    delimiter: str = "COMMA"
    state: str = "Open"
    closed_at: datetime | None = None
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    ok: list[tuple[str, bool, list[str]]] = field(default_factory=list)
    failed: list[tuple[str, str, list[str]]] = field(default_factory=list)


class IngestJobs:
    def __init__(self, store: Store, job_seconds: Callable[[], float]) -> None:
        self.store = store
        self.job_seconds = job_seconds
        self.jobs: dict[str, IngestJob] = {}
        self._lock = threading.Lock()
        self._n = 0

    def create(self, body: dict[str, Any], version: str) -> IngestJob:
        operation = body.get("operation")
        if operation not in OPERATIONS:
            raise WriteError("INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
        try:
            table = self.store.table(str(body.get("object") or ""))
        except KeyError:
            raise WriteError("INVALIDJOB", f"InvalidJob : Unable to find object: {body.get('object')}") from None
        ext = body.get("externalIdFieldName")
        if operation == "upsert":
            f = table.field(str(ext or ""))
            if f is None or not (f.external_id or f.name == "Id"):
                raise WriteError("INVALIDJOB", f"InvalidJob : Field name provided, {ext} is not an External ID or indexed field for {table.name}")
            ext = f.name
        delimiter, line_ending = body.get("columnDelimiter", "COMMA"), body.get("lineEnding", "LF")
        if delimiter not in DELIMITERS or line_ending not in LINE_ENDINGS:
            raise WriteError("INVALIDJOB", "InvalidJob : invalid columnDelimiter or lineEnding")
        with self._lock:
            self._n += 1
            job = IngestJob(sf_id("750", 500_000 + self._n), operation, table, ext, self.store.now(),
                            version, line_ending, delimiter)
            self.jobs[job.id] = job
        return job

    def get(self, job_id: str) -> IngestJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise WriteError("NOT_FOUND", "Job not found", status=404)
        return job

    def upload(self, job: IngestJob, data: bytes) -> None:
        if job.state != "Open" or job.header:
            raise WriteError("INVALIDJOBSTATE", "Only one CSV upload is allowed per job, while it is Open", status=409)
        text = data.decode("utf-8-sig")
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=DELIMITERS[job.delimiter])
        rows = [r for r in reader if r]
        if not rows:
            raise WriteError("INVALIDBATCH", "InvalidBatch : The batch is empty")
        job.header, job.rows = rows[0], rows[1:]
        if job.operation in ("delete", "hardDelete") and [h.lower() for h in job.header] != ["id"]:
            raise WriteError("INVALIDBATCH", "InvalidBatch : The 'delete' batch must contain only 'Id'")

    def close(self, job: IngestJob, write_row: RowWriter) -> None:
        """UploadComplete: apply every row now; results appear when the job completes."""
        if job.state != "Open":
            raise WriteError("INVALIDJOBSTATE", f"Job {job.id} is {job.state}, not Open")
        job.state = "UploadComplete"
        job.closed_at = self.store.now()
        for cells in job.rows:
            values = {}
            for name, cell in zip(job.header, cells, strict=False):
                if cell == "":
                    continue  # empty: leave the field as it is
                values[name] = None if cell == "#N/A" else cell
            try:
                id_, created = write_row(job.table, values, job.operation, job.external_id)
                job.ok.append((id_, created, cells))
            except WriteError as e:
                fields = ",".join(e.fields)
                job.failed.append((str(values.get("Id") or ""), f"{e.code}:{e.message}:{fields} --", cells))

    def abort(self, job: IngestJob) -> None:
        if self.state(job) in ("JobComplete", "Failed", "Aborted"):
            raise WriteError("INVALIDJOBSTATE", f"Job {job.id} cannot be aborted in state {self.state(job)}")
        job.state = "Aborted"

    def delete(self, job: IngestJob) -> None:
        with self._lock:
            self.jobs.pop(job.id, None)

    def state(self, job: IngestJob) -> str:
        if job.state == "UploadComplete" and job.closed_at is not None:
            elapsed = (self.store.now() - job.closed_at).total_seconds()
            return "JobComplete" if elapsed >= self.job_seconds() else "InProgress"
        return job.state

    def info(self, job: IngestJob) -> dict[str, Any]:
        state = self.state(job)
        done = state == "JobComplete"
        return {
            "id": job.id,
            "operation": job.operation,
            "object": job.table.name,
            "createdById": self.store.running_user_id,
            "createdDate": format_datetime(job.created_at),
            "systemModstamp": format_datetime(job.closed_at or job.created_at),
            "state": state,
            "externalIdFieldName": job.external_id,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(job.version),
            "jobType": "V2Ingest",
            "contentUrl": f"services/data/v{job.version}/jobs/ingest/{job.id}/batches",
            "lineEnding": job.line_ending,
            "columnDelimiter": job.delimiter,
            "numberRecordsProcessed": len(job.ok) + len(job.failed) if done else 0,
            "numberRecordsFailed": len(job.failed) if done else 0,
            "retries": 0,
            "totalProcessingTime": 0,
        }

    def results(self, job: IngestJob, kind: str) -> str:
        """successfulResults / failedResults / unprocessedrecords as CSV."""
        out = io.StringIO()
        writer = csv.writer(out, delimiter=DELIMITERS[job.delimiter],
                            lineterminator=LINE_ENDINGS[job.line_ending], quoting=csv.QUOTE_ALL)
        state = self.state(job)
        if kind == "unprocessedrecords":
            writer.writerow(job.header)
            if state in ("Open", "Aborted", "Failed"):
                writer.writerows(job.rows)
            return out.getvalue()
        if state != "JobComplete":
            return _header_only(writer, out, kind, job.header)
        if kind == "successfulResults":
            writer.writerow(["sf__Id", "sf__Created", *job.header])
            for id_, created, cells in job.ok:
                writer.writerow([id_, "true" if created else "false", *cells])
        else:
            writer.writerow(["sf__Id", "sf__Error", *job.header])
            for id_, error, cells in job.failed:
                writer.writerow([id_, error, *cells])
        return out.getvalue()


def _header_only(writer: Any, out: io.StringIO, kind: str, header: list[str]) -> str:
    second = "sf__Created" if kind == "successfulResults" else "sf__Error"
    writer.writerow(["sf__Id", second, *header])
    return out.getvalue()
