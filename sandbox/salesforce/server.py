"""SalesforceSandbox: the emulator as an object tests, the demo and benchmarks hold.

    with SalesforceSandbox(dataset).start() as sb:
        session = build_session(login_url=sb.url, instance_url=sb.url, ca_file=sb.ca_file)
        sf = Salesforce(username=USERNAME, password=PASSWORD, security_token=SECURITY_TOKEN,
                        session=session)

It serves TLS by default with a throwaway CA made at start (trustme; cert for
127.0.0.1 and localhost, CA PEM at `sb.ca_file`), because simple-salesforce
only builds https:// URLs. In-process methods (`create`, `update`, `delete`,
`purge`, `merge`, `add_field`, ...) act as an admin would in the org: they are
not API calls, are not counted, and skip permission checks.

Time: `clock` (default: the real time) stamps records, dates every response
(`Date`), runs Bulk API 2.0 query jobs (`bulk_job_seconds` plus
`bulk_job_seconds_per_10k_rows` each) and empties the recycle bin (15 days;
`recycle_bin_capacity` rows). A test moves it instead of sleeping.

Knobs for behaviour real orgs differ in: `activity_external_id` ("allowed",
"plain": an Activity field asked for as External ID is created plain,
"refused": that request fails), `auth.rotate_refresh_tokens`,
`revoke_refresh_tokens()`.
"""

from __future__ import annotations

import re
import shutil
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trustme

from crmsync.sandbox.common import (
    FaultEngine,
    RequestLog,
    ServerThread,
    sleep_ms,
    write_secret_file,
    write_standalone_config,
)
from crmsync.sandbox.realistic import SalesforceProfile

from . import auth
from .app import SalesforceApp
from .auth import Auth
from .bulk import BulkJobs
from .ingest import IngestJobs
from .schema import METADATA_TYPES, Field
from .store import BIN_CAPACITY, Store, WriteError

ACTIVITY_EXTERNAL_ID_MODES = ("allowed", "plain", "refused")


class ApiUsage:
    """The org's daily API request counter (Sforce-Limit-Info, /limits, 403 when spent)."""

    def __init__(self, daily_limit: int) -> None:
        self._lock = threading.Lock()
        self.used = 0
        self.max = daily_limit

    def take(self) -> bool:
        with self._lock:
            if self.used >= self.max:
                return False
            self.used += 1
            return True

    def set(self, used: Any = None, max: Any = None) -> None:  # noqa: A002
        with self._lock:
            if max is not None:
                self.max = int(max)
            if used is not None:
                self.used = int(used)

    def snapshot(self) -> tuple[int, int]:
        with self._lock:
            return self.used, self.max

    def header(self) -> str:
        used, cap = self.snapshot()
        return f"api-usage={used}/{cap}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SalesforceSandbox:
    """A loopback Salesforce org that unmodified simple-salesforce talks to."""

    def __init__(
        self,
        dataset: Mapping[str, Any] | None = None,
        faults: Any = None,
        tls: bool = True,
        clock: Callable[[], datetime] | None = None,
        daily_limit: int = 100_000,
        bulk_job_seconds: float = 0.0,
        *,
        bulk_job_seconds_per_10k_rows: float = 0.0,
        recycle_bin_capacity: int | None = BIN_CAPACITY,
        activity_external_id: str = "allowed",
        host: str = "127.0.0.1",
        port: int = 0,
        sleep_ms: Callable[[float], None] = sleep_ms,
        latency_ms: float = 0.0,
        long_running_limit: int | None = None,
        long_running_seconds: float = 20.0,
    ) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="crmsync-sf-sandbox-"))
        self.tls = tls
        self.host, self.port = host, port
        self.clock = clock or _utcnow
        self.sleep_ms = sleep_ms
        # Knobs (sandbox/realistic.py has documented values): every API request waits
        # latency_ms before it is answered; with long_running_limit, a new request is refused
        # (403 REQUEST_LIMIT_EXCEEDED ConcurrentRequests) while that many requests have been
        # running long_running_seconds or more (app.py `_admit`).
        self.latency_ms = float(latency_ms)
        # Big records (X3): a REST query page ends before this many bytes of records (at
        # least one record a page); None: pages are cut by batch size only. Salesforce:
        # "The maximum result size is 2000, but this can be smaller if you have selected
        # several fields or if you have included blob fields (e.g. long text area fields,
        # rich text area fields)" (help article 000386264); by how much is not documented.
        self.query_page_bytes: int | None = None
        self.long_running_limit = long_running_limit
        self.long_running_seconds = float(long_running_seconds)
        self.store = Store(self.clock)
        self.faults = FaultEngine(faults)
        self.requests = RequestLog()
        self.usage = ApiUsage(daily_limit)
        self.store.bin_capacity = recycle_bin_capacity
        self.bulk_job_seconds = bulk_job_seconds
        self.bulk_job_seconds_per_10k_rows = bulk_job_seconds_per_10k_rows
        if activity_external_id not in ACTIVITY_EXTERNAL_ID_MODES:
            raise ValueError(f"activity_external_id: use one of {', '.join(ACTIVITY_EXTERNAL_ID_MODES)}")
        self.activity_external_id = activity_external_id
        self.bulk = BulkJobs(self.store, self.bulk_duration)
        self.ingest = IngestJobs(self.store, lambda: self.bulk_job_seconds)
        self.auth = Auth(self._dir / "salesforce-jwt-key.pem")
        self.jwt_key_file = str(self.auth.key_file)
        self.ca_file: str | None = None
        self.url = ""
        self._server: ServerThread | None = None
        self.app = SalesforceApp(self)
        if dataset is not None:
            self.load(dataset)

    def bulk_duration(self, rows: int) -> float:
        """Seconds a Bulk API 2.0 query job of `rows` result rows runs (sandbox clock)."""
        return self.bulk_job_seconds + rows / 10_000 * self.bulk_job_seconds_per_10k_rows

    @property
    def recycle_bin_capacity(self) -> int | None:
        return self.store.bin_capacity

    @recycle_bin_capacity.setter
    def recycle_bin_capacity(self, rows: int | None) -> None:
        self.store.bin_capacity = rows

    # ------------------------------------------------------------ lifecycle
    def start(self) -> SalesforceSandbox:
        ctx = None
        if self.tls:
            ca = trustme.CA()
            cert = ca.issue_cert("127.0.0.1", "localhost")
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            cert.configure_cert(ctx)
            ca_path = self._dir / "salesforce-ca.pem"
            ca.cert_pem.write_to_path(str(ca_path))
            self.ca_file = str(ca_path)
        self._server = ServerThread(
            self.app, host=self.host, port=self.port, ssl_context=ctx,
            date_clock=lambda: self.clock().timestamp(),
        ).start()
        self.url = self._server.url
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> SalesforceSandbox:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ data
    def load(self, dataset: Mapping[str, Any] | None) -> None:
        """Replace all records with a dataset ("salesforce" part or the whole dict).

        Object values may be any iterable of records (a generator keeps memory flat).
        """
        self.store.load(dataset)
        self.app.locators.clear()
        self.bulk.jobs.clear()
        self.ingest.jobs.clear()

    def load_stream(self, records: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Replace all records from (object, record) pairs, e.g. sandbox.generate.iter_records
        mapped to (obj, rec): a million contacts without holding a dataset dict."""
        self.store.load_stream(records)
        self.app.locators.clear()
        self.bulk.jobs.clear()
        self.ingest.jobs.clear()

    def reset(self, dataset: Mapping[str, Any] | None = None) -> None:
        """Between tests: reload data, clear faults, request counts, API usage and jobs."""
        self.load(dataset)
        self.faults.clear()
        self.requests.reset()
        self.usage.set(used=0)
        self.auth.restore_refresh_token()
        self.app.describe_versions.clear()  # a new org: its metadata dates from the epoch

    def records(self, obj: str) -> list[dict[str, Any]]:
        """Every record of an object, deleted ones included (as queryAll would see them)."""
        return self.store.records(obj)

    def record(self, obj: str, id_: str) -> dict[str, Any] | None:
        with self.store.lock:
            t = self.store.table(obj)
            row = self.store.get_row(t, id_)
            return None if row is None else self.store.record(t, row)

    def create(self, obj: str, fields: Mapping[str, Any]) -> str:
        return self.store.create(obj, fields, system=True)

    def update(self, obj: str, id_: str, fields: Mapping[str, Any]) -> None:
        self.store.update(obj, id_, fields, system=True)

    def delete(self, obj: str, id_: str) -> None:
        self.store.delete(obj, id_)

    def purge(self, obj: str, id_: str) -> None:
        self.store.purge(obj, id_)

    def merge(self, obj: str, master: str, losers: Iterable[str]) -> None:
        self.store.merge(obj, master, list(losers))

    def add_field(self, obj: str, name: str, type: str = "string", **attrs: Any) -> None:  # noqa: A002
        """Add a field to an object (as an admin would); `type` is a describe type or a Metadata type."""
        describe_type = METADATA_TYPES.get(type.lower(), type)
        custom = attrs.pop("custom", name.endswith("__c"))
        self.store.add_field(obj, Field(name, describe_type, custom=custom, **attrs))

    def remove_field(self, obj: str, name: str) -> None:
        self.store.remove_field(obj, name)

    def set_api_usage(self, used: int | None = None, max: int | None = None) -> None:  # noqa: A002
        self.usage.set(used, max)

    def new_session(self, user_id: str | None = None) -> str:
        """A valid session id, for simple-salesforce's session_id (direct) mode: the
        integration user's, or `user_id`'s (to see the org as that user does)."""
        return self.auth.issue(user_id) if user_id else self.auth.issue()

    def expire_sessions(self) -> None:
        self.auth.expire_all()

    def revoke_refresh_tokens(self) -> None:
        """Revoke every OAuth refresh token: the next refresh_token grant answers invalid_grant."""
        self.auth.revoke_refresh_tokens()

    def expire_recycle_bin(self) -> int:
        """Purge what the recycle bin no longer keeps at the sandbox's time (API requests do
        this themselves); returns how many rows went."""
        return self.store.expire_bin()

    # ------------------------------------------------------------ config
    def write_config(self, path: str | Path) -> Path:
        """Write the [salesforce] table that connects crmsync here, and its files beside it.

        An existing file keeps its other tables; its [salesforce] table is replaced.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        base = path.parent
        write_secret_file(base / "salesforce-password.txt", auth.PASSWORD + "\n")
        write_secret_file(base / "salesforce-token.txt", auth.SECURITY_TOKEN + "\n")
        write_secret_file(base / "salesforce-consumer-secret.txt", auth.CONSUMER_SECRET + "\n")
        write_secret_file(base / "salesforce-refresh-token.txt", auth.REFRESH_TOKEN + "\n")
        write_secret_file(base / "salesforce-jwt-key.pem", self.auth.private_pem)
        ca_name = ""
        if self.ca_file:
            shutil.copyfile(self.ca_file, base / "salesforce-ca.pem")
            ca_name = "salesforce-ca.pem"
        table = _config_table(self.url, ca_name)
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        rest = _without_table(old, "salesforce").rstrip()
        path.write_text((rest + "\n\n" if rest else "") + table, encoding="utf-8")
        return path


def _config_table(url: str, ca_name: str) -> str:
    return f"""[salesforce]
# Written by `crmsync sandbox salesforce` for the emulator at {url}.
# The credentials are the sandbox's fixed, documented dummies; the files sit beside this file.
# The sandbox also accepts auth = "oauth_password", "jwt", "client_credentials" and
# "refresh_token" (consumer_key, consumer_secret_file and refresh_token_file below; a
# connected app's OAuth refresh token, as Singer and Meltano users hold).
enabled = true
auth = "password"
login_url = "{url}"
instance_url = "{url}"
ca_file = "{ca_name}"
username = "{auth.USERNAME}"
password_file = "salesforce-password.txt"
security_token_file = "salesforce-token.txt"
consumer_key = "{auth.CONSUMER_KEY}"
consumer_secret_file = "salesforce-consumer-secret.txt"
private_key_file = "salesforce-jwt-key.pem"
refresh_token_file = "salesforce-refresh-token.txt"
api_version = "59.0"
"""


_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\"-]+)\s*\]\]?\s*(#.*)?$")


def _without_table(text: str, name: str) -> str:
    """TOML text minus the table `name` and its sub-tables."""
    out, skipping = [], False
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            table = m.group(1).strip('"')
            skipping = table == name or table.startswith(name + ".")
        if not skipping:
            out.append(line)
    return "\n".join(out)


def serve_forever(
    port: int = 0,
    dataset: Mapping[str, Any] | None = None,
    faults: Any = None,
    write_config: str | Path | None = None,
    tls: bool = True,
    realistic: SalesforceProfile | None = None,
) -> None:
    """Run one sandbox in the foreground (`crmsync sandbox salesforce`) until Ctrl-C;
    `realistic` (sandbox/realistic.py) turns on a real org's limits."""
    kwargs = realistic.sandbox_kwargs() if realistic is not None else {}
    sb = SalesforceSandbox(dataset, faults=faults, tls=tls, port=port, **kwargs).start()
    try:
        counts = {name: len(t.rows) for name, t in ((t.name, t) for t in sb.store.tables.values())}
        print(f"Salesforce sandbox listening on {sb.url}", flush=True)
        if sb.ca_file:
            print(f"  CA certificate: {sb.ca_file}", flush=True)
        print(
            f"  login: username {auth.USERNAME}, password {auth.PASSWORD}, security token "
            f"{auth.SECURITY_TOKEN} (sandbox dummies)",
            flush=True,
        )
        print("  records: " + ", ".join(f"{k} {v}" for k, v in counts.items()), flush=True)
        if realistic is not None:
            print(f"  limits: realistic ({realistic.describe()})", flush=True)
        else:
            print("  limits: none (--unlimited) beyond the daily API requests; no latency", flush=True)
        if write_config:
            print(f"  wrote {write_standalone_config(write_config, sb.write_config)}", flush=True)
        print("  stop it with Ctrl-C (or `kill` its process id)", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sb.stop()


__all__ = ["ApiUsage", "SalesforceSandbox", "WriteError", "serve_forever"]
