"""/healthz and /metrics for the daemon, on a loopback port.

/healthz answers JSON: ok (every enabled CRM's last successful sync is younger
than its staleness limit, or the CRM waits for its API quota: sync/daemon.py),
per CRM whether it is healthy, the last successful sync and its age, the last
outcome and error, `waiting_for_quota_until`, and the outbox depth. Previews
never count. HTTP 200 when ok, 503 otherwise, so a container orchestrator can
use it as is.

/metrics is Prometheus text from prometheus-client: runs, records pulled,
flags by rule and status, writes and rejected rows, API calls and remaining
quota, outbox depth. Each Daemon has its own registry (tests run several).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from werkzeug.serving import make_server

if TYPE_CHECKING:  # run.py builds the report; the daemon hands it over
    from .run import RunReport

log = logging.getLogger(__name__)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.runs = Counter("crmsync_runs", "Runs by CRM, kind and outcome", ["crm", "kind", "outcome"], registry=r)
        self.records = Counter("crmsync_records_pulled", "Records pulled", ["crm", "object"], registry=r)
        self.api_calls = Counter("crmsync_api_calls", "CRM API calls spent", ["crm"], registry=r)
        self.writes = Counter("crmsync_writes", "Rows written to the CRM", ["crm"], registry=r)
        self.rejected = Gauge("crmsync_rejected_rows", "Outbox rows the CRM rejected (failed or dead)", ["crm"], registry=r)
        self.quota_remaining = Gauge("crmsync_api_quota_remaining", "Daily API calls left, as the CRM last said", ["crm"], registry=r)
        self.last_success = Gauge("crmsync_last_success_timestamp_seconds", "End of the last successful run", ["crm"], registry=r)
        self.flags = Gauge("crmsync_flags", "Flags by rule and status", ["crm", "rule", "status"], registry=r)
        self.outbox = Gauge("crmsync_outbox_rows", "Outbox rows by status", ["status"], registry=r)

    def observe_run(self, kind: str, rep: RunReport) -> None:
        crm = rep.crm
        self.runs.labels(crm, kind, rep.outcome).inc()
        self.api_calls.labels(crm).inc(rep.api_calls)
        if rep.pull is not None:
            for o in rep.pull.objects:
                self.records.labels(crm, o.object).inc(o.records)
        if rep.drain is not None:
            self.writes.labels(crm).inc(rep.drain.written)
        if rep.quota and rep.quota[1]:
            used, limit = rep.quota
            self.quota_remaining.labels(crm).set(max(0, (limit or 0) - (used or 0)))
        if rep.outcome in ("ok", "partial"):
            self.last_success.labels(crm).set(datetime.now(UTC).timestamp())

    def observe_state(self, flag_counts: dict[str, dict[str, dict[str, int]]], outbox_depth: dict[str, int],
                      rejected: dict[str, int]) -> None:
        self.flags.clear()
        for crm, by_rule in flag_counts.items():
            for rule, by_status in by_rule.items():
                for status, n in by_status.items():
                    self.flags.labels(crm, rule, status).set(n)
        for status, n in outbox_depth.items():
            self.outbox.labels(status).set(n)
        for crm, n in rejected.items():
            self.rejected.labels(crm).set(n)


class HealthServer:
    """Serves /healthz and /metrics in a thread. `health` returns (ok, body)."""

    def __init__(self, host: str, port: int, metrics: Metrics,
                 health: Callable[[], tuple[bool, dict[str, Any]]]) -> None:
        self.metrics = metrics
        self.health = health
        self.server = make_server(host, port, self._app, threaded=True)
        self.port = self.server.server_port
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> HealthServer:
        self._thread.start()
        log.info("health endpoint listening", extra={"port": self.port})
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            body = generate_latest(self.metrics.registry)
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [body]
        if path in ("/healthz", "/health", "/"):
            ok, data = self.health()
            body = json.dumps(data, default=str).encode()
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")])
            return [body]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /healthz or /metrics\n"]
