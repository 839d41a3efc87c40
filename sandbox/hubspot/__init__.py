"""HubSpot loopback emulator that the unmodified hubspot-api-client talks to over HTTP.

    from crmsync.sandbox.hubspot import HubSpotSandbox
    with HubSpotSandbox(dataset=generate(seed=1, accounts=50)) as hs:
        client = HubSpot(access_token="pat-sandbox-0000", host=hs.url)
        ...
        hs.requests.count("search")          # calls per route (see app.py for route names)
        hs.records("contacts")               # current records, dataset shape

Plain HTTP on 127.0.0.1 (port 0 picks a free port). Routes, fault kinds and
wire details are documented in app.py; data rules in objects.py; search in
search.py; associations in associations.py; limits in limits.py; tokens in
auth.py; property history (who set each value) in history.py, and the
workflow_revert fault (a workflow rewrites a record after an API write, like
the Salesforce sandbox's post_write) with the other fault kinds in app.py.
`serve_forever` is what `crmsync sandbox hubspot` runs.

In-process API (thread-safe; ids are numeric strings, types plural or 0-x ids):
  HubSpotSandbox(dataset=None, faults=None, clock=None, rate_limits=False, port=0, sleep=time.sleep,
                 daily_usage=None, index_lag_seconds=0, latency_ms=0)
  start() / stop() / with ...; url; requests; object_requests; faults; limits
  reset(data=False, faults=False); set_faults(spec); set_rate_limits(False | True | dict)
  set_daily_usage(used=None, limit=None, resets_at=None)   the daily-usage knob (below)
  load(dataset); records(type, archived=False); record(type, id)
  create(type, properties, associations=[(to_type, to_id, label)], source="person") -> id
  update(type, id, properties, source="person", user_id=None); archive(type, id)
  merge(type, primary_id, other_id) -> new id
  history(type, id, property) -> [entries, newest first]
    source: who the write is, as property history records it (history.py): "person"
    (CRM_UI, userId:N; N = user_id, else the first active owner's userId), "bulk",
    "mobile", "workflow" (AUTOMATION_PLATFORM), "import", "integration" (another app),
    "api" (the sandbox private app: as if crmsync wrote it)
  associate(from_type, from_id, to_type, to_id, label=None); dissociate(... label=None)
  purge(type, id) (delete for good: gone from both listings); add_owner(owner) -> id
  add_property(type, name, type_="string"); remove_property(type, name)
  write_config(path) -> path   ([hubspot] table + hubspot-token.txt beside it)
rate_limits dict keys: per_10s (100), search_per_second (5), daily (250000), daily_used (0).
index_lag_seconds: search does not see records modified that recently (the index_lag fault,
always on); latency_ms: every API request waits that long before it is answered. Realistic
values for all three: sandbox/realistic.py (`crmsync sandbox` uses them by default).

The daily-usage knob (`daily_usage={"used": n, "limit": m, "resets_at": t}` or
`set_daily_usage(...)`; `resets_at` a datetime, ISO text or epoch seconds, by
default the next midnight UTC): every API call counts one; private-app
responses carry X-HubSpot-RateLimit-Daily / -Daily-Remaining,
`GET /account-info/v3/api-usage/daily/private-apps` reports usageLimit,
currentUsage and resetsAt, and once the usage reaches the limit every call is
answered 429 with HubSpot's documented DAILY body until `resets_at`. The
10-second and search windows stay off unless `rate_limits` turns them on.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crmsync.sandbox.common import (
    FaultEngine,
    RequestLog,
    ServerThread,
    write_secret_file,
    write_standalone_config,
)
from crmsync.sandbox.realistic import HubSpotProfile

from .app import HubSpotApp, dump_records, load_faults
from .auth import CLIENT_ID, CLIENT_SECRET, PRIVATE_APP_TOKEN, REFRESH_TOKEN, Auth
from .limits import RateLimits
from .objects import Crm, HsError
from .store import Store, object_type

__all__ = ["HubSpotSandbox", "HsError", "serve_forever", "PRIVATE_APP_TOKEN", "CLIENT_ID",
           "CLIENT_SECRET", "REFRESH_TOKEN"]


class HubSpotSandbox:
    """One emulated HubSpot account served on loopback, with an in-process control API."""

    def __init__(self, dataset: Mapping[str, Any] | None = None, faults: Any = None,
                 clock: Callable[[], float] | None = None, rate_limits: bool | dict[str, Any] = False,
                 port: int = 0, sleep: Callable[[float], None] = time.sleep,
                 daily_usage: Mapping[str, Any] | None = None, index_lag_seconds: float = 0.0,
                 latency_ms: float = 0.0) -> None:
        self._dataset = dataset
        self._faults_spec = faults
        self._rate_cfg = rate_limits
        self._daily_cfg = dict(daily_usage or {})
        self._clock = clock
        self._port = port
        self.faults = FaultEngine()
        load_faults(self.faults, faults)
        self.sleep = sleep
        self._index_lag = float(index_lag_seconds)
        self._latency_ms = float(latency_ms)
        self._build()
        self._server: ServerThread | None = None

    def _build(self) -> None:
        self.store = Store(self._clock)
        self.crm = Crm(self.store)
        self.auth = Auth()
        self.limits = RateLimits.from_config(self._rate_cfg)
        if self._daily_cfg:
            self.set_daily_usage(**self._daily_cfg)
        self.app = HubSpotApp(self.crm, self.faults, self.limits, self.auth, self.sleep,
                              on_reset=self._on_reset)
        self.app.index_lag_seconds = self._index_lag
        self.app.latency_ms = self._latency_ms
        self.crm.association_dates_frozen = lambda: any(
            r.kind == "association_dates_frozen" for r in self.faults.rules)
        if self._dataset:
            self.crm.load(self._dataset)

    # ------------------------------------------------------------ server
    def start(self) -> HubSpotSandbox:
        if self._server is None:
            self._server = ServerThread(self.app, port=self._port).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> HubSpotSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("HubSpotSandbox is not started; call start() first")
        return self._server.url

    # ------------------------------------------------------------ accounting and control
    @property
    def requests(self) -> RequestLog:
        """Counts per route (`hs.requests.count("search")`, `.counts()`, `.writes()`)."""
        return self.app.log

    @property
    def object_requests(self) -> RequestLog:
        """Counts per "route:object" (e.g. `count("list:contacts")`)."""
        return self.app.object_log

    def reset(self, data: bool = False, faults: bool = False) -> None:
        """Clear request counts; `data=True` reloads the initial dataset, `faults=True` drops rules."""
        self.app.log.reset()
        self.app.object_log.reset()
        self._on_reset({"data": data, "faults": faults})

    def _on_reset(self, opts: Mapping[str, Any]) -> None:
        if opts.get("faults"):
            self.faults.clear()
        if opts.get("data"):
            with self.store.lock:
                fresh = Store(self._clock)
                crm = Crm(fresh)
                if self._dataset:
                    crm.load(self._dataset)
                # swap in place so the running app keeps its references
                self.store.__dict__.update({k: v for k, v in fresh.__dict__.items() if k != "lock"})
                self.crm.schemas, self.crm.assoc, self.crm.owners = crm.schemas, crm.assoc, crm.owners
                self.app.searcher.clear()
            self.limits.reset_windows()
            self.limits.daily_used = 0
            self.auth.__dict__.update(Auth().__dict__)

    def set_faults(self, spec: Any) -> None:
        """Replace the fault rules (same spec forms as the constructor)."""
        load_faults(self.faults, spec)

    def set_rate_limits(self, cfg: bool | dict[str, Any]) -> None:
        """Replace the rate limit settings (False = headers only, True = defaults, or a dict)."""
        fresh = RateLimits.from_config(cfg)
        self.limits.__dict__.update(fresh.__dict__)

    def set_daily_usage(self, used: int | None = None, limit: int | None = None,
                        resets_at: Any = None) -> None:
        """The daily-usage knob: today's usage, the account's daily limit and the next reset
        (datetime, ISO text or epoch seconds); from now on the limit answers the DAILY 429."""
        with self.store.lock:
            self.limits.set_daily_usage(used=used, limit=limit, resets_at=_epoch(resets_at))

    # ------------------------------------------------------------ data, in process
    def _t(self, obj_type: str) -> str:
        obj = object_type(obj_type)
        if obj is None:
            raise ValueError(f"unknown HubSpot object type {obj_type!r}")
        return obj

    def load(self, dataset: Mapping[str, Any]) -> None:
        with self.store.lock:
            self.crm.load(dataset)

    def records(self, obj_type: str, archived: bool = False) -> list[dict[str, Any]]:
        """Current records in the dataset shape: {id, properties, associations, ...}."""
        with self.store.lock:
            return dump_records(self.crm, self._t(obj_type), archived)

    def record(self, obj_type: str, id_: str | int) -> dict[str, Any] | None:
        """One live record's properties (merged ids resolve), or None."""
        with self.store.lock:
            rec = self.store.get(self._t(obj_type), int(id_))
            return None if rec is None else dict(rec.props)

    def create(self, obj_type: str, properties: Mapping[str, Any],
               associations: list[tuple[str, str | int, str | None]] | None = None,
               source: str = "person", user_id: int | str | None = None) -> str:
        """Create a record as a user would (validated); associations: (to_type, to_id, label)."""
        obj = self._t(obj_type)
        with self.store.lock:
            props, errors = self.crm.check(obj, properties)
            if errors:
                raise ValueError(f"invalid properties: {errors}")
            rec = self.crm.create(obj, props, source=self._source(source, user_id))
            for to, to_id, label in associations or []:
                self.associate(obj, rec.id, to, to_id, label)
            return str(rec.id)

    def update(self, obj_type: str, id_: str | int, properties: Mapping[str, Any],
               source: str = "person", user_id: int | str | None = None) -> None:
        """Change a record as `source` would (default: a person in HubSpot's UI); the
        change is in its property history (history.py)."""
        obj = self._t(obj_type)
        with self.store.lock:
            rec = self._rec(obj, id_)
            props, errors = self.crm.check(obj, properties)
            if errors:
                raise ValueError(f"invalid properties: {errors}")
            self.crm.update(obj, rec, props, source=self._source(source, user_id))

    def history(self, obj_type: str, id_: str | int, name: str) -> list[dict[str, Any]]:
        """One property's history as a read with propertiesWithHistory returns it."""
        from .history import entries
        from .store import iso

        obj = self._t(obj_type)
        with self.store.lock:
            rec = self._rec(obj, id_)
            return entries(rec.history, name, rec.props.get(name), iso(rec.created))

    def _source(self, kind: str, user_id: int | str | None) -> dict[str, Any]:
        from .history import source

        if kind in ("person", "bulk", "mobile") and user_id is None:
            active = [o for o in self.crm.owners.values() if not o.get("archived")]
            user_id = active[0]["userId"] if active else 1
        return source(kind, user_id)

    def archive(self, obj_type: str, id_: str | int) -> None:
        obj = self._t(obj_type)
        with self.store.lock:
            self.crm.archive(obj, self._rec(obj, id_))

    def merge(self, obj_type: str, primary_id: str | int, other_id: str | int) -> str:
        obj = self._t(obj_type)
        with self.store.lock:
            rec = self.crm.merge(obj, self._rec(obj, primary_id), self._rec(obj, other_id))
            return str(rec.id)

    def associate(self, from_type: str, from_id: str | int, to_type: str, to_id: str | int,
                  label: str | None = None) -> None:
        """Associate two records: label None (unlabeled), "primary", or a user label."""
        a, b = self._t(from_type), self._t(to_type)
        with self.store.lock:
            x, y = self._rec(a, from_id), self._rec(b, to_id)
            self.crm.associate(a, x.id, b, y.id, self.crm.assoc.type_for(a, b, label))

    def dissociate(self, from_type: str, from_id: str | int, to_type: str, to_id: str | int,
                   label: str | None = None) -> None:
        """Remove an association: all of it (label None), or only "primary" / a user label."""
        a, b = self._t(from_type), self._t(to_type)
        with self.store.lock:
            x, y = self._rec(a, from_id), self._rec(b, to_id)
            types = None
            if label:
                types = [t for t in self.crm.assoc.type_for(a, b, label)
                         if t != self.crm.assoc.defaults[(a, b)]]
            self.crm.dissociate(a, x.id, b, y.id, types)

    def purge(self, obj_type: str, id_: str | int) -> None:
        """Delete a live or archived record for good (GDPR delete, past the archive's 90 days)."""
        obj = self._t(obj_type)
        with self.store.lock:
            t = self.store.tables[obj]
            rec = t.live.get(int(id_)) or t.archived.get(int(id_))
            if rec is None:
                raise KeyError(f"no {obj} record {id_}")
            self.crm.purge(obj, rec)

    def add_property(self, obj_type: str, name: str, type_: str = "string", **kw: Any) -> None:
        with self.store.lock:
            self.crm.schemas[self._t(obj_type)].add_custom(name, type_, self.store.now_ms(), **kw)

    def remove_property(self, obj_type: str, name: str) -> None:
        """Drop a property from the schema; values stay on records (RELIABILITY X6)."""
        with self.store.lock:
            schema = self.crm.schemas[self._t(obj_type)]
            p = schema.props.pop(name, None)
            if p is not None:
                p.archived_ms = self.store.now_ms()
                schema.archived[name] = p

    def add_owner(self, owner: Mapping[str, Any]) -> str:
        with self.store.lock:
            return str(self.crm.add_owner(owner)["id"])

    def _rec(self, obj: str, id_: str | int) -> Any:
        rec = self.store.get(obj, int(id_))
        if rec is None:
            raise KeyError(f"no live {obj} record {id_}")
        return rec

    # ------------------------------------------------------------ config
    def write_config(self, path: str | Path) -> Path:
        """Write the [hubspot] sync.toml table for this sandbox, and hubspot-token.txt beside it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_secret_file(path.parent / "hubspot-token.txt", PRIVATE_APP_TOKEN + "\n")
        table = (
            "[hubspot]\n"
            "# HubSpot sandbox (crmsync sandbox hubspot); dummy credentials, not secret\n"
            "enabled = true\n"
            f'host = "{self.url}"\n'
            'auth = "private_app"\n'
            'token_file = "hubspot-token.txt"\n'
        )
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        pattern = re.compile(r"(?ms)^\[hubspot\]\n.*?(?=^\[(?!hubspot[.\]])|\Z)")
        if pattern.search(text):
            text = pattern.sub(table + "\n", text, count=1)
        else:
            text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + table
        path.write_text(text, encoding="utf-8")
        return path


def _epoch(value: Any) -> float | None:
    """Epoch seconds from a datetime, ISO text or a number (None stays None)."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    raise ValueError(f"resets_at: a datetime, ISO text or epoch seconds, not {value!r}")


def serve_forever(port: int = 0, dataset: Mapping[str, Any] | None = None, faults: Any = None,
                  write_config: str | Path | None = None, realistic: HubSpotProfile | None = None
                  ) -> None:
    """Run the emulator in the foreground until Ctrl-C (the `crmsync sandbox hubspot` command);
    `realistic` (sandbox/realistic.py) turns on a real account's limits."""
    kwargs = realistic.sandbox_kwargs() if realistic is not None else {}
    hs = HubSpotSandbox(dataset=dataset, faults=faults, port=port, **kwargs).start()
    counts = {o: len(hs.store.tables[o]) for o in hs.store.tables}
    print(f"HubSpot sandbox listening on {hs.url}", flush=True)
    print("  records: " + ", ".join(f"{k} {v}" for k, v in counts.items())
          + f", owners {len(hs.crm.owners)}", flush=True)
    print(f"  token: {PRIVATE_APP_TOKEN} (private app); OAuth client {CLIENT_ID}", flush=True)
    if realistic is not None:
        print(f"  limits: realistic ({realistic.describe()})", flush=True)
    else:
        print("  limits: none (--unlimited): no rate limit, no index lag, no latency", flush=True)
    if write_config:
        print(f"  wrote {write_standalone_config(write_config, hs.write_config)}", flush=True)
    print("  stop it with Ctrl-C (or `kill` its process id)", flush=True)
    stop = threading.Event()
    try:
        while not stop.wait(3600):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        hs.stop()
