"""Side by side: crmsync and the open-source connectors people use, against the same sandbox org.

    .venv/bin/python bench/peers.py                       # every peer, both CRMs
    .venv/bin/python bench/peers.py --peer tap-salesforce --peer crmsync --crm salesforce
    .venv/bin/python bench/peers.py --accounts 2000 --contacts 10000 --json out.json --keep DIR

Peers (each pinned, each in its own venv under bench/.peers/<name>, installed on
first use with that venv's pip; `--reinstall` starts a venv afresh):

    tap-salesforce             Singer (singer-io), REST API (api_type REST)
    tap-hubspot                Singer (singer-io)
    airbyte-source-salesforce  Airbyte (PyPI build of the connector)
    airbyte-source-hubspot     Airbyte (PyPI build of the connector)

For each CRM, each tool (crmsync first) gets a fresh sandbox process made from
the same seed (the same org, record for record), then:

1. full run: what the tool does on first use (a Singer tap: --discover, then a
   sync of the selected streams without state; Airbyte: discover, then read
   with a full catalog; crmsync: `sync --full --pull-only`);
2. the change set, applied inside the sandbox process as people in the CRM
   would (change_salesforce / change_hubspot below: updates, creates, deletions);
3. incremental run: the same tool with what the full run left (Singer: the last
   STATE; Airbyte: the last state per stream; crmsync: its mirror).

Measured per run: requests the sandbox answered (its /_sandbox/requests log,
before and after; discovery is part of the full run), wall seconds, CPU seconds
(user + system of the tool's processes, from os.wait4), peak memory (ru_maxrss
of the tool's process, its own children included, through LAUNCHER), records the
tool emitted (Singer/Airbyte RECORD messages; crmsync: rows its pull applied),
deletions it saw (records marked deleted: Salesforce IsDeleted, HubSpot archived
or Airbyte's deals_archived; crmsync: rows the run marked deleted in its
mirror). The sandbox itself runs in its own process, so its CPU and memory are
nobody's. bench/README.md has the latest table and what each peer needed.

Peers reach the sandbox unmodified: their config points them at it where they
have an option for it; where they hardcode a vendor host, bench/peers_shim
(crmsync_bench_shim.py, loaded through a .pth file in the peer's venv only)
rewrites those origins to the sandbox's in `requests`' HTTPAdapter.send. The
sandboxes' TLS test CA is given through REQUESTS_CA_BUNDLE / SSL_CERT_FILE.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
PEERS_DIR = HERE / ".peers"
SHIM = HERE / "peers_shim" / "crmsync_bench_shim.py"
sys.path.insert(0, str(ROOT))

SF_OBJECTS = ("User", "Account", "Contact", "Opportunity", "OpportunityContactRole")
HS_OBJECTS = ("owners", "companies", "contacts", "deals")
START_DATE = "2000-01-01T00:00:00Z"

# ------------------------------------------------------------------ the change set

# Every STEP-th record of each kind is updated; CREATE new contacts; every
# DELETE_STEP-th contact and opportunity is deleted (Salesforce: to the recycle bin,
# which cascades to its contact roles; HubSpot: archived).
STEP, CREATE, DELETE_STEP = 50, 25, 200


def change_salesforce(sb: Any) -> dict[str, int]:
    out = {"updated": 0, "created": 0, "deleted": 0}
    updates = {"Account": "Name", "Contact": "Title", "Opportunity": "Name"}
    for obj, fld in updates.items():
        for i, rec in enumerate(sorted(sb.records(obj), key=lambda r: r["Id"])):
            if i % STEP == 0:
                sb.update(obj, rec["Id"], {fld: f"{rec.get(fld) or ''} (changed)"})
                out["updated"] += 1
    accounts = sorted(r["Id"] for r in sb.records("Account"))
    for i in range(CREATE):
        sb.create("Contact", {"LastName": f"Bench{i}", "FirstName": "New",
                              "AccountId": accounts[i * 7 % len(accounts)]})
        out["created"] += 1
    for obj in ("Contact", "Opportunity"):
        ids = sorted(r["Id"] for r in sb.records(obj))
        for i, rid in enumerate(ids):
            if i % DELETE_STEP == 1:
                sb.delete(obj, rid)
                out["deleted"] += 1
    return out


def change_hubspot(sb: Any) -> dict[str, int]:
    out = {"updated": 0, "created": 0, "deleted": 0}
    updates = {"companies": "name", "contacts": "jobtitle", "deals": "dealname"}
    for obj, prop in updates.items():
        for i, rec in enumerate(sorted(sb.records(obj), key=lambda r: int(r["id"]))):
            if i % STEP == 0:
                old = (rec.get("properties") or {}).get(prop) or ""
                sb.update(obj, rec["id"], {prop: f"{old} (changed)"})
                out["updated"] += 1
    companies = sorted(int(r["id"]) for r in sb.records("companies"))
    for i in range(CREATE):
        sb.create("contacts", {"firstname": "New", "lastname": f"Bench{i}",
                               "email": f"bench{i}@example.com"},
                  associations=[("companies", companies[i * 7 % len(companies)], None)])
        out["created"] += 1
    for obj in ("contacts", "deals"):
        ids = sorted(int(r["id"]) for r in sb.records(obj))
        for i, rid in enumerate(ids):
            if i % DELETE_STEP == 1:
                sb.archive(obj, rid)
                out["deleted"] += 1
    return out


# ------------------------------------------------------------------ sandbox process


def serve(args: argparse.Namespace) -> None:
    """--serve: generate the org, start one sandbox, write sync.toml; then answer stdin
    lines ("change": apply the change set) until EOF."""
    import logging

    from crmsync.sandbox.generate import generate

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    cpa = args.contacts / max(1, args.accounts)
    data = generate(seed=args.seed, accounts=args.accounts, contacts_per_account=cpa,
                    crms=(args.crm,))
    sb: Any
    if args.crm == "salesforce":
        from crmsync.sandbox.salesforce import SalesforceSandbox

        sb = SalesforceSandbox(data).start()
        sizes = {o: len(data["salesforce"].get(o) or ()) for o in SF_OBJECTS}
    else:
        from crmsync.sandbox.hubspot import HubSpotSandbox

        sb = HubSpotSandbox(dataset=data).start()
        sizes = {o: len(data["hubspot"].get(o) or ()) for o in HS_OBJECTS}
    oldest = min(_record_dates(data[args.crm]))
    del data
    sb.write_config(Path(args.dir) / "sync.toml")
    print(json.dumps({"url": sb.url, "ca_file": getattr(sb, "ca_file", None), "sizes": sizes,
                      "start_date": oldest[:10] + "T00:00:00Z"}), flush=True)
    for line in sys.stdin:
        if line.strip() == "change":
            done = change_salesforce(sb) if args.crm == "salesforce" else change_hubspot(sb)
            print(json.dumps(done), flush=True)
    sb.stop()


def _record_dates(part: dict[str, Any]) -> list[str]:
    """ISO creation dates of the generated records (the peers' start_date: the oldest day)."""
    out = []
    for rows in part.values():
        for rec in rows if isinstance(rows, list) else ():
            if not isinstance(rec, dict):
                continue
            props = rec.get("properties") if isinstance(rec.get("properties"), dict) else rec
            for key in ("CreatedDate", "createdate", "createdAt"):
                value = props.get(key) or rec.get(key)
                if isinstance(value, str) and value[:2] in ("19", "20"):
                    out.append(value)
                    break
    return out or [START_DATE]


@dataclass
class Sandbox:
    crm: str
    proc: subprocess.Popen[str]
    info: dict[str, Any]
    workdir: Path

    @property
    def url(self) -> str:
        return str(self.info["url"])

    @property
    def ca_file(self) -> str | None:
        return self.info.get("ca_file")

    def requests(self) -> tuple[int, dict[str, int]]:
        """(total, per route) the sandbox has answered so far."""
        ctx = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None
        with urllib.request.urlopen(self.url + "/_sandbox/requests", context=ctx, timeout=30) as r:
            got = json.loads(r.read())
        return int(got["total"]), dict(got.get("by_route") or {})

    def change(self) -> dict[str, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("change\n")
        self.proc.stdin.flush()
        return dict(json.loads(self.proc.stdout.readline()))

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def start_sandbox(args: argparse.Namespace, crm: str, workdir: Path) -> Sandbox:
    cmd = [sys.executable, __file__, "--serve", "--crm", crm, "--contacts", str(args.contacts),
           "--accounts", str(args.accounts), "--seed", str(args.seed), "--dir", str(workdir)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise SystemExit("the sandbox process did not start")
    return Sandbox(crm, proc, json.loads(line), workdir)


# ------------------------------------------------------------------ measuring one run


@dataclass
class Measure:
    requests: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    peak_kib: int = 0
    records: int = 0
    deletions: int = 0
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    routes: dict[str, int] = field(default_factory=dict)  # requests per sandbox route

    def add(self, other: Measure) -> None:
        self.requests += other.requests
        self.wall += other.wall
        self.cpu += other.cpu
        self.peak_kib = max(self.peak_kib, other.peak_kib)
        self.records += other.records
        self.deletions += other.deletions
        self.error = self.error or other.error
        for k, n in other.routes.items():
            self.routes[k] = self.routes.get(k, 0) + n


# The measured command is started by this small launcher, not forked from the benchmark
# itself: Linux keeps a process's peak RSS across exec (the forked copy of its parent
# counts), so a child forked straight from this (growing) process would report this
# process's peak. The launcher (python -I -S, a few MiB) forks the command, reaps it
# with wait4 and writes that rusage: the command's own and its reaped children's.
LAUNCHER = """
import json, os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, ru = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump({"code": os.waitstatus_to_exitcode(status), "user": ru.ru_utime,
               "system": ru.ru_stime, "maxrss_kib": ru.ru_maxrss}, f)
"""


def run_measured(cmd: list[str], sb: Sandbox, out: Path, env: dict[str, str],
                 cwd: Path) -> Measure:
    """Run one command (through LAUNCHER), stdout to `out`, stderr to out.err."""
    before = sb.requests()
    usage_file = Path(str(out) + ".rusage.json")
    t0 = time.monotonic()
    with open(out, "wb") as fo, open(str(out) + ".err", "wb") as fe:
        subprocess.run([sys.executable, "-I", "-S", "-c", LAUNCHER, str(usage_file), *cmd],
                       cwd=cwd, env=env, stdout=fo, stderr=fe, check=False)
    wall = time.monotonic() - t0
    ru = json.loads(usage_file.read_text())
    m = Measure(wall=wall, cpu=ru["user"] + ru["system"], peak_kib=int(ru["maxrss_kib"]))
    after = sb.requests()
    m.requests = after[0] - before[0]
    m.routes = {k: n - before[1].get(k, 0) for k, n in after[1].items() if n - before[1].get(k, 0)}
    if ru["code"] != 0:
        tail = Path(str(out) + ".err").read_text(errors="replace").strip().splitlines()[-5:]
        m.error = f"exit {ru['code']}: " + " | ".join(tail)[-400:]
    return m


def base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if "proxy" not in k.lower() and not k.startswith(("PYTHON", "VIRTUAL_ENV"))}


# ------------------------------------------------------------------ peers


@dataclass
class Peer:
    name: str
    crm: str
    requirement: str  # pip requirement, pinned
    full: Callable[[Peer, Sandbox, Path], Measure]
    incremental: Callable[[Peer, Sandbox, Path], Measure]
    blocker: str = ""  # why it cannot run against the sandbox, when it fails (known)

    @property
    def venv(self) -> Path:
        return PEERS_DIR / self.name

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def files(self, workdir: Path) -> tuple[Path, Path, Path]:
        """This peer's config, catalog and state files in `workdir`."""
        config, catalog, state = (workdir / f"{self.name}.{part}.json"
                                  for part in ("config", "catalog", "state"))
        return config, catalog, state

    def install(self, reinstall: bool = False) -> None:
        stamp = self.venv / ".installed"
        if reinstall and self.venv.exists():
            shutil.rmtree(self.venv)
        if stamp.exists() and stamp.read_text() == self.requirement:
            return
        print(f"installing {self.requirement} into {self.venv} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(self.venv)], check=True)
        subprocess.run([self.bin("pip"), "install", "-q", self.requirement], check=True)
        site = subprocess.run([self.bin("python"), "-c",
                               "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              check=True, capture_output=True, text=True).stdout.strip()
        shutil.copyfile(SHIM, Path(site) / SHIM.name)
        (Path(site) / "crmsync_bench_shim.pth").write_text("import crmsync_bench_shim\n")
        stamp.write_text(self.requirement)

    def env(self, sb: Sandbox, rewrite: dict[str, str]) -> dict[str, str]:
        env = base_env()
        env["PATH"] = f"{self.venv / 'bin'}:{env.get('PATH', '')}"
        env["CRMSYNC_BENCH_REWRITE"] = json.dumps(rewrite)
        if sb.ca_file:
            env["REQUESTS_CA_BUNDLE"] = env["SSL_CERT_FILE"] = sb.ca_file
        return env


def read_messages(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON lines of a tool's output, one at a time (the outputs can be large)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    pass


# -- crmsync


MIRROR_TABLES = ("owners", "accounts", "contacts", "opportunities", "contact_roles")


def mirror_deleted(db: Path) -> int:
    """Rows the mirror holds as deleted (deleted_at set), over the canonical tables."""
    import sqlite3

    if not db.exists():
        return 0
    conn = sqlite3.connect(db)
    try:
        return sum(conn.execute(f"SELECT count(*) FROM {t} WHERE deleted_at IS NOT NULL").fetchone()[0]
                   for t in MIRROR_TABLES)
    finally:
        conn.close()


def crmsync_run(sb: Sandbox, workdir: Path, flags: list[str]) -> Measure:
    """One `crmsync sync --pull-only` run. Records: rows its pull applied (the runs row);
    deletions: rows the run marked deleted in the mirror (contact roles retired with
    their contact or deal included, which the runs row does not count)."""
    import sqlite3

    config = workdir / "sync.toml"
    if not config.read_text(encoding="utf-8").startswith("[mirror]"):
        config.write_text('[mirror]\npath = "crmsync.db"\n\n' + config.read_text(encoding="utf-8"),
                          encoding="utf-8")
    cmd = [sys.executable, "-m", "crmsync.sync.cli", "sync", *flags, "--pull-only",
           "--crm", sb.crm, "--config", str(config)]
    deleted_before = mirror_deleted(workdir / "crmsync.db")
    m = run_measured(cmd, sb, workdir / "crmsync.out", base_env(), ROOT)
    conn = sqlite3.connect(workdir / "crmsync.db")
    row = conn.execute("SELECT counts FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    conn.close()
    pulled = json.loads(row[0] or "{}").get("pull", {})
    m.records = sum(o.get("records", 0) for o in pulled.values())
    m.deletions = mirror_deleted(workdir / "crmsync.db") - deleted_before
    return m


def crmsync_full(peer: Peer, sb: Sandbox, workdir: Path) -> Measure:
    return crmsync_run(sb, workdir, ["--full"])


def crmsync_incremental(peer: Peer, sb: Sandbox, workdir: Path) -> Measure:
    return crmsync_run(sb, workdir, [])


# -- Singer taps


def singer_select(catalog: dict[str, Any], streams: tuple[str, ...]) -> dict[str, Any]:
    """Select the wanted streams and all their fields (metadata `selected`)."""
    keep = []
    for entry in catalog["streams"]:
        if entry.get("tap_stream_id", entry.get("stream")) not in streams:
            continue
        for md in entry.get("metadata", []):
            if not md.get("breadcrumb"):
                md["metadata"]["selected"] = True
                # as a user picks it: incremental on the tap's own replication key
                keys = md["metadata"].get("valid-replication-keys") or []
                if keys and md["metadata"].get("forced-replication-method") != "FULL_TABLE":
                    md["metadata"]["replication-method"] = "INCREMENTAL"
                    md["metadata"]["replication-key"] = (
                        "SystemModstamp" if "SystemModstamp" in keys else keys[0])
            elif md["metadata"].get("inclusion") != "unsupported":
                md["metadata"]["selected"] = True
        keep.append(entry)
    return {"streams": keep}


def singer_count(messages: Iterable[dict[str, Any]], deleted: Callable[[dict[str, Any]], bool]
                 ) -> tuple[int, int, dict[str, Any] | None]:
    records = deletions = 0
    state = None
    for msg in messages:
        if msg.get("type") == "RECORD":
            records += 1
            if deleted(msg.get("record") or {}):
                deletions += 1
        elif msg.get("type") == "STATE":
            state = msg.get("value")
    return records, deletions, state


def singer_sync(peer: Peer, sb: Sandbox, workdir: Path, exe: str, streams: tuple[str, ...],
                rewrite: dict[str, str], deleted: Callable[[dict[str, Any]], bool],
                full: bool, catalog_flag: str = "--catalog") -> Measure:
    env = peer.env(sb, rewrite)
    total = Measure()
    config, catalog, state = peer.files(workdir)
    if full:
        m = run_measured([peer.bin(exe), "--config", str(config), "--discover"], sb,
                         workdir / f"{peer.name}.discover.out", env, workdir)
        total.add(m)
        if m.error:
            return total
        found = json.loads((workdir / f"{peer.name}.discover.out").read_text())
        catalog.write_text(json.dumps(singer_select(found, streams)))
    cmd = [peer.bin(exe), "--config", str(config), catalog_flag, str(catalog)]
    if not full and state.exists():
        cmd += ["--state", str(state)]
    out = workdir / f"{peer.name}.{'full' if full else 'incremental'}.out"
    m = run_measured(cmd, sb, out, env, workdir)
    m.records, m.deletions, last = singer_count(read_messages(out), deleted)
    if last is not None:
        state.write_text(json.dumps(last))
    total.add(m)
    return total


def tap_salesforce_config(sb: Sandbox, workdir: Path) -> Path:
    from crmsync.sandbox.salesforce import CONSUMER_KEY, CONSUMER_SECRET, REFRESH_TOKEN

    path = workdir / "tap-salesforce.config.json"
    path.write_text(json.dumps({
        "refresh_token": REFRESH_TOKEN, "client_id": CONSUMER_KEY,
        "client_secret": CONSUMER_SECRET, "start_date": sb.info["start_date"], "api_type": "REST",
        "select_fields_by_default": True, "is_sandbox": False,
    }))
    return path


def tap_salesforce(full: bool) -> Callable[[Peer, Sandbox, Path], Measure]:
    def run(peer: Peer, sb: Sandbox, workdir: Path) -> Measure:
        if full:
            tap_salesforce_config(sb, workdir)
        rewrite = {"https://login.salesforce.com": sb.url}
        return singer_sync(peer, sb, workdir, "tap-salesforce", SF_OBJECTS, rewrite,
                           lambda r: bool(r.get("IsDeleted")), full,
                           catalog_flag="--properties")  # this tap reads no --catalog
    return run


# -- Airbyte sources


def airbyte_catalog(found: dict[str, Any], streams: tuple[str, ...]) -> dict[str, Any]:
    """Configured catalog: the wanted streams, incremental where the source offers it."""
    out = []
    for stream in found["catalog"]["streams"]:
        if stream["name"] not in streams:
            continue
        incremental = "incremental" in stream.get("supported_sync_modes", [])
        entry: dict[str, Any] = {
            "stream": stream,
            "sync_mode": "incremental" if incremental else "full_refresh",
            "destination_sync_mode": "append",
        }
        if incremental and stream.get("default_cursor_field"):
            entry["cursor_field"] = stream["default_cursor_field"]
        out.append(entry)
    return {"streams": out}


def airbyte_run(peer: Peer, sb: Sandbox, workdir: Path, exe: str, streams: tuple[str, ...],
                rewrite: dict[str, str], deleted: Callable[[dict[str, Any], str], bool],
                full: bool) -> Measure:
    env = peer.env(sb, rewrite)
    total = Measure()
    config, catalog, state = peer.files(workdir)
    if full:
        out = workdir / f"{peer.name}.discover.out"
        m = run_measured([peer.bin(exe), "discover", "--config", str(config)], sb, out, env, workdir)
        total.add(m)
        found = [msg for msg in read_messages(out) if msg.get("type") == "CATALOG"]
        if m.error or not found:
            total.error = total.error or "discover gave no catalog: " + " | ".join(
                str(msg.get("log") or msg.get("trace")) for msg in read_messages(out))[-400:]
            return total
        catalog.write_text(json.dumps(airbyte_catalog(found[0], streams)))
    cmd = [peer.bin(exe), "read", "--config", str(config), "--catalog", str(catalog)]
    if not full and state.exists():
        cmd += ["--state", str(state)]
    out = workdir / f"{peer.name}.{'full' if full else 'incremental'}.out"
    m = run_measured(cmd, sb, out, env, workdir)
    states: dict[str, Any] = {}
    for msg in read_messages(out):
        if msg.get("type") == "RECORD":
            rec = msg["record"]
            m.records += 1
            m.deletions += deleted(rec.get("data") or {}, rec.get("stream", ""))
        elif msg.get("type") == "STATE":
            st = msg["state"]
            key = json.dumps(st.get("stream", {}).get("stream_descriptor"), sort_keys=True)
            states[key] = st
        elif msg.get("type") == "TRACE" and (msg.get("trace") or {}).get("type") == "ERROR":
            err = msg["trace"]["error"]
            m.notes.append(str(err.get("message"))[:300])
    if states:
        state.write_text(json.dumps(list(states.values())))
    total.add(m)
    total.notes += m.notes
    return total


HS_STREAMS = ("companies", "contacts", "deals", "owners")


def airbyte_hubspot(full: bool) -> Callable[[Peer, Sandbox, Path], Measure]:
    def run(peer: Peer, sb: Sandbox, workdir: Path) -> Measure:
        from crmsync.sandbox.hubspot import PRIVATE_APP_TOKEN

        if full:
            (workdir / f"{peer.name}.config.json").write_text(json.dumps({
                "credentials": {"credentials_title": "Private App Credentials",
                                "access_token": PRIVATE_APP_TOKEN},
                "start_date": sb.info["start_date"],
            }))
        rewrite = {"https://api.hubapi.com": sb.url}
        return airbyte_run(peer, sb, workdir, "source-hubspot", HS_STREAMS + ("deals_archived",),
                           rewrite, lambda r, s: bool(r.get("archived")) or s.endswith("_archived"),
                           full)
    return run


def airbyte_salesforce(full: bool) -> Callable[[Peer, Sandbox, Path], Measure]:
    def run(peer: Peer, sb: Sandbox, workdir: Path) -> Measure:
        from crmsync.sandbox.salesforce import CONSUMER_KEY, CONSUMER_SECRET, REFRESH_TOKEN

        if full:
            (workdir / f"{peer.name}.config.json").write_text(json.dumps({
                "auth_type": "Client", "client_id": CONSUMER_KEY,
                "client_secret": CONSUMER_SECRET, "refresh_token": REFRESH_TOKEN,
                "is_sandbox": False, "start_date": sb.info["start_date"], "force_use_bulk_api": False,
                # as a user with a large org does: discover only the objects wanted
                "streams_criteria": [{"criteria": "exacts", "value": o} for o in SF_OBJECTS],
            }))
        rewrite = {"https://login.salesforce.com": sb.url}
        return airbyte_run(peer, sb, workdir, "source-salesforce", SF_OBJECTS, rewrite,
                           lambda r, s: bool(r.get("IsDeleted")), full)
    return run


def tap_hubspot(full: bool) -> Callable[[Peer, Sandbox, Path], Measure]:
    def run(peer: Peer, sb: Sandbox, workdir: Path) -> Measure:
        from crmsync.sandbox.hubspot import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN

        if full:
            (workdir / f"{peer.name}.config.json").write_text(json.dumps({
                "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                "refresh_token": REFRESH_TOKEN, "redirect_uri": "https://localhost/callback",
                "start_date": sb.info["start_date"],
            }))
        rewrite = {"https://api.hubapi.com": sb.url}
        return singer_sync(peer, sb, workdir, "tap-hubspot", HS_STREAMS, rewrite,
                           lambda r: bool(r.get("archived")), full, catalog_flag="--properties")
    return run


PEERS: dict[str, Peer] = {}


def register(peer: Peer) -> None:
    PEERS[peer.name] = peer


register(Peer("crmsync", "*", "", crmsync_full, crmsync_incremental))
register(Peer("tap-salesforce", "salesforce", "tap-salesforce==2.8.1",
              tap_salesforce(True), tap_salesforce(False)))
register(Peer("tap-hubspot", "hubspot", "tap-hubspot==4.5.0", tap_hubspot(True), tap_hubspot(False),
              blocker="needs HubSpot's legacy Companies v2 and Deals v1 APIs (/companies/v2/"
                      "properties, /companies/v2/companies/paged, /deals/v1/deal/paged), "
                      "superseded by CRM v3 in 2020; the sandbox serves CRM v3 only"))
register(Peer("airbyte-source-salesforce", "salesforce", "airbyte-source-salesforce==2.10.3",
              airbyte_salesforce(True), airbyte_salesforce(False)))
register(Peer("airbyte-source-hubspot", "hubspot", "airbyte-source-hubspot==5.7.0",
              airbyte_hubspot(True), airbyte_hubspot(False)))


# ------------------------------------------------------------------ the table


def fmt_row(tool: str, run: str, m: Measure | None, error: str | None = None) -> list[str]:
    if m is None or (m.error and not m.records):
        why = error or (m.error if m else "the full run failed")
        return [tool, run, f"could not run: {why}", "", "", "", "", ""]
    return [tool, run, str(m.requests), f"{m.wall:.1f}", f"{m.cpu:.1f}",
            f"{m.peak_kib / 1024:.0f}", str(m.records), str(m.deletions)]


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer", action="append", choices=sorted(PEERS),
                   help="a tool to run (repeat; default: all); crmsync always runs")
    p.add_argument("--crm", choices=("salesforce", "hubspot"), action="append")
    p.add_argument("--accounts", type=int, default=2000)
    p.add_argument("--contacts", type=int, default=10000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--reinstall", action="store_true")
    p.add_argument("--keep", help="keep the work directories under this folder")
    p.add_argument("--json", help="also write the results as JSON to this file")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--dir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        args.crm = args.crm[0]
        serve(args)
        return
    wanted = ["crmsync"] + [n for n in (args.peer or sorted(PEERS)) if n != "crmsync"]
    crms = args.crm or ["salesforce", "hubspot"]
    results: list[dict[str, Any]] = []
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="crmsync-peers-"))
    for crm in crms:
        for name in wanted:
            peer = PEERS[name]
            if peer.crm not in ("*", crm):
                continue
            label = name if peer.crm != "*" else f"crmsync ({crm})"
            row: dict[str, Any] = {"crm": crm, "tool": name, "requirement": peer.requirement,
                                   "blocker": peer.blocker}
            results.append(row)
            try:
                if peer.requirement:
                    peer.install(args.reinstall)
            except subprocess.CalledProcessError as exc:
                row["error"] = f"install failed ({exc})"
                print(f"{label}: {row['error']}", file=sys.stderr)
                continue
            workdir = base / f"{crm}-{name}"
            workdir.mkdir(parents=True, exist_ok=True)
            sb = start_sandbox(args, crm, workdir)
            try:
                row["sizes"] = sb.info["sizes"]
                full = peer.full(peer, sb, workdir)
                row["full"] = full.__dict__
                print(f"{label} full: {full.__dict__}", file=sys.stderr, flush=True)
                row["changes"] = sb.change()
                inc = peer.incremental(peer, sb, workdir) if not full.error else None
                row["incremental"] = inc.__dict__ if inc else None
                print(f"{label} incremental: {row['incremental']}", file=sys.stderr, flush=True)
            finally:
                sb.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    print_table(results)
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)


def print_table(results: list[dict[str, Any]]) -> None:
    head = ["CRM", "tool", "run", "requests", "wall s", "CPU s", "peak MiB", "records", "deletions"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    ratios = ["| CRM | tool | run | requests | wall | CPU | peak memory |", "|" + " --- |" * 7]
    for crm in ("salesforce", "hubspot"):
        ours = {r["tool"]: r for r in results if r["crm"] == crm}.get("crmsync")
        for r in (r for r in results if r["crm"] == crm):
            tool = r["tool"] + (f" {r['requirement'].split('==')[-1]}" if r["requirement"] else "")
            for run in ("full", "incremental"):
                m = Measure(**r[run]) if r.get(run) else None
                why = r.get("error") or (r.get("blocker") if m is None or m.error else None)
                lines.append("| " + " | ".join([crm, *fmt_row(tool, run, m, why)]) + " |")
                if ours and ours.get(run) and m and not m.error and r["tool"] != "crmsync":
                    o = Measure(**ours[run])
                    ratios.append("| " + " | ".join([
                        crm, tool, run, ratio(o.requests, m.requests), ratio(o.wall, m.wall),
                        ratio(o.cpu, m.cpu), ratio(o.peak_kib, m.peak_kib)]) + " |")
    print("\n".join(lines))
    print("\ncrmsync / peer (below 1: crmsync uses less)\n")
    print("\n".join(ratios))


if __name__ == "__main__":
    main()
