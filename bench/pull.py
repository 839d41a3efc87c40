"""Benchmark a full pull through the real CLI: records/s, API calls vs the floor, peak RSS.

    .venv/bin/python bench/pull.py --crm salesforce --contacts 100000 --accounts 20000
    .venv/bin/python bench/pull.py --crm salesforce --bulk always --bulk-job-seconds 10
    .venv/bin/python bench/pull.py --crm hubspot --contacts 100000 --accounts 20000

The sandbox runs in a separate process (this script with --serve), so the
measurement is crmsync's alone: `python -m crmsync sync --full --pull-only
--crm CRM --config DIR/sync.toml` is started as a child and reaped with
os.wait4, whose rusage gives the child's own peak RSS. API calls come from the
run's row in the mirror's `runs` table (what crmsync counted) and from the
sandbox's request log (what the server saw); the floor is docs/budgets.md's:

- Salesforce REST: sum over objects of ceil(n / 2000) query pages;
  Bulk 2.0: per object 1 create + polls + ceil(n / 50,000) result pages + 1 delete.
- HubSpot (search path): ceil(n / 200) per object, plus ceil(n / 1000) v4
  association batch reads per association type (contacts: 1, deals: 2), plus
  the owners listing (active ones 500 per page, plus one archived listing).

Schema look-ups (describe, properties), login and the limits check are shown
separately from the data calls the floor bounds.

`--reconcile` (HubSpot) then runs `crmsync sync --reconcile --pull-only`: an
incremental pull (its company sweep included) followed by the id-set reconcile,
and reports the reconcile's calls per object against its floor (list:
ceil(n / 100) per object; crmsync's tasks by search, ceil(t / 200); contact roles
ceil(deals / 1000) v4 reads) and, measured in this process over the same
sandbox, what a search walk would have cost instead (ceil(n / 200)).

    .venv/bin/python bench/pull.py --crm hubspot --contacts 20000 --accounts 2000 --reconcile
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SF_OBJECTS = {"User": "owners", "Account": "accounts", "Contact": "contacts",
              "Opportunity": "opportunities", "OpportunityContactRole": "contact_roles"}
HS_OBJECTS = {"owners": "owners", "companies": "accounts", "contacts": "contacts",
              "deals": "opportunities"}
HS_SIZES = (*HS_OBJECTS, "tasks")
HS_ASSOC_TYPES = {"companies": 0, "contacts": 1, "deals": 2}
METADATA = {"describe", "properties", "limits", "quota", "auth", "login", "check"}


# ------------------------------------------------------------------ sandbox process


def serve(args: argparse.Namespace) -> None:
    """--serve: generate the org, start one sandbox, write sync.toml, report sizes, wait for EOF."""
    import logging

    from crmsync.sandbox.generate import generate

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    cpa = args.contacts / max(1, args.accounts)
    data = generate(seed=args.seed, accounts=args.accounts, contacts_per_account=cpa,
                    crms=(args.crm,))
    part = data[args.crm]
    sizes = {name: len(part.get(name) or ()) for name in (SF_OBJECTS if args.crm == "salesforce" else HS_SIZES)}
    config = Path(args.dir) / "sync.toml"
    if args.crm == "salesforce":
        from crmsync.sandbox.salesforce import SalesforceSandbox

        sb: Any = SalesforceSandbox(data, bulk_job_seconds=args.bulk_job_seconds).start()
    else:
        from crmsync.sandbox.hubspot import HubSpotSandbox

        sb = HubSpotSandbox(dataset=data).start()
    del data, part
    if args.big_fields:
        (big_salesforce if args.crm == "salesforce" else big_hubspot)(sb)
    sb.write_config(config)
    print(json.dumps({"url": sb.url, "ca_file": getattr(sb, "ca_file", None), "sizes": sizes}),
          flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    sb.stop()


# ------------------------------------------------------------------ big records (X3)

BIG_LINE = "Zoë Köln 東京 مرحبا 🙂 \"quoted\", a line\r\n"  # multi-byte, quotes, CR/LF


def big_text(n: int) -> str:
    return (BIG_LINE * (n // len(BIG_LINE) + 1))[:n]


def big_salesforce(sb: Any) -> None:
    """Two custom long text areas on every contact: 30,000 characters each (a ~60 KB
    record), the first one at the documented maximum, 131,072, on every 50th contact.
    Two long text fields also cap REST pages at 200 rows (SOQL reference)."""
    for name in ("Notes_A__c", "Notes_B__c"):
        sb.add_field("Contact", name, "LongTextArea", length=131_072)
    half, full = big_text(30_000), big_text(131_072)  # shared: the sandbox holds one copy
    ids = [r["Id"] for r in sb.records("Contact")]
    for i, rid in enumerate(ids):
        sb.update("Contact", rid, {"Notes_A__c": full if i % 50 == 0 else half, "Notes_B__c": half})


def big_hubspot(sb: Any) -> None:
    """A custom text property on every contact: 60,000 characters (a ~60 KB record), and
    100,000 on every 50th (HubSpot's 65,536 applies to values entered in the CRM; a form
    has no limit: knowledge.hubspot.com "property field types")."""
    sb.add_property("contacts", "notes_big")
    normal, huge = big_text(60_000), big_text(100_000)
    for i, rec in enumerate(sb.records("contacts")):
        sb.update("contacts", rec["id"], {"notes_big": huge if i % 50 == 0 else normal},
                  source="import")


def start_sandbox(args: argparse.Namespace, workdir: Path) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    cmd = [sys.executable, __file__, "--serve", "--crm", args.crm, "--contacts", str(args.contacts),
           "--accounts", str(args.accounts), "--seed", str(args.seed), "--dir", str(workdir),
           "--bulk-job-seconds", str(args.bulk_job_seconds)] + (["--big-fields"] if args.big_fields else [])
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise SystemExit("the sandbox process did not start")
    return proc, json.loads(line)


def sandbox_requests(info: dict[str, Any]) -> dict[str, Any]:
    ctx = ssl.create_default_context(cafile=info["ca_file"]) if info.get("ca_file") else None
    with urllib.request.urlopen(info["url"] + "/_sandbox/requests", context=ctx, timeout=30) as r:
        return json.loads(r.read())


# ------------------------------------------------------------------ the measured run


def configure(workdir: Path, args: argparse.Namespace) -> Path:
    config = workdir / "sync.toml"
    text = config.read_text(encoding="utf-8").rstrip("\n") + "\n"
    if args.crm == "salesforce":
        text += f'bulk = "{args.bulk}"\n'
        if args.big_fields:
            text += '[salesforce.extra_fields]\nContact = ["Notes_A__c", "Notes_B__c"]\n'
    else:
        text += f"requests_per_10s = {args.requests_per_10s}\nsearches_per_second = {args.searches_per_second}\n"
        if args.big_fields:
            text += 'extra_properties = { contacts = ["notes_big"] }\n'

    config.write_text(f'[mirror]\npath = "crmsync.db"\n\n{text}', encoding="utf-8")
    return config


def run_pull(config: Path, crm: str, *flags: str) -> tuple[float, int, int]:
    """Run the CLI as a child; (seconds, exit code, peak RSS in KiB of that child)."""
    cmd = [sys.executable, "-m", "crmsync.sync.cli", "sync", *(flags or ("--full",)), "--pull-only",
           "--crm", crm, "--config", str(config)]
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PYTHONPATH"] = str(ROOT)
    t0 = time.monotonic()
    with open(config.parent / "crmsync.log", "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return seconds, proc.returncode, int(usage.ru_maxrss)


def last_run(db: Path) -> dict[str, Any]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    row = dict(conn.execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone())
    conn.close()
    for key in ("counts", "api_by_operation"):
        row[key] = json.loads(row[key] or "{}")
    return row


# ------------------------------------------------------------------ floors


def floor(crm: str, sizes: dict[str, int], bulk: str, polls_per_job: float) -> dict[str, int]:
    """docs/budgets.md's minimum data calls per canonical table, for the path(s) `bulk` allows.

    Salesforce: REST ceil(n / 2000); Bulk 2.0 1 create + polls + ceil(n / 50,000) + 1 delete,
    with the polls a job took in this run (the sandbox's modelled job latency). `auto`
    learns an object's size from its first REST page (totalSize; no COUNT() call) and
    then stays on REST or moves the rest to Bulk: its floor is min(REST, 1 + Bulk).
    """
    out: dict[str, int] = {}
    if crm == "salesforce":
        for sobject, table in SF_OBJECTS.items():
            n = sizes[sobject]
            rest = max(1, math.ceil(n / 2000))
            bulk_calls = 1 + math.ceil(polls_per_job) + max(1, math.ceil(n / 50_000)) + 1
            out[table] = {"never": rest, "always": bulk_calls}.get(bulk, min(rest, 1 + bulk_calls))
        return out
    for obj, table in HS_OBJECTS.items():
        n = sizes[obj]
        if obj == "owners":
            out[table] = math.ceil(n / 500) + 1  # active owners 500 per page + the archived listing
            continue
        out[table] = max(1, math.ceil(n / 200)) + HS_ASSOC_TYPES[obj] * math.ceil(n / 1000)
    out["contact_roles"] = 0  # built from the deal and contact pulls' associations
    return out


def rest_floor(sizes: dict[str, int]) -> int:
    return sum(max(1, math.ceil(sizes[o] / 2000)) for o in SF_OBJECTS)


def report(args: argparse.Namespace, info: dict[str, Any], seconds: float, code: int,
           rss_kib: int, run: dict[str, Any], server: dict[str, Any]) -> dict[str, Any]:
    pulled = run["counts"].get("pull", {})
    records = sum(o.get("records", 0) for o in pulled.values())
    routes = server.get("by_route", {})
    polls = sum(n for k, n in routes.items() if "bulk2_query_poll" in k)
    jobs = sum(n for k, n in routes.items() if "bulk2_query_create" in k)
    want = floor(args.crm, info["sizes"], args.bulk, polls / jobs if jobs else 0.0)
    data = {t: o.get("data_calls", 0) for t, o in pulled.items()}
    meta = {k: v for k, v in run["api_by_operation"].items() if k in METADATA}
    total_floor = sum(want.values())
    total_data = sum(data.get(t, 0) for t in want)
    result = {
        "crm": args.crm,
        "mode": f"bulk={args.bulk}" if args.crm == "salesforce" else
                f"{args.requests_per_10s}/10s, {args.searches_per_second} search/s",
        "sizes": info["sizes"],
        "exit_code": code,
        "outcome": run["outcome"],
        "records": records,
        "seconds": round(seconds, 1),
        "records_per_second": round(records / seconds) if seconds else None,
        "api_calls_counted": run["api_calls"],
        "api_calls_by_operation": run["api_by_operation"],
        "sandbox_requests": server.get("total"),
        "data_calls": data,
        "data_calls_floor": want,
        "data_calls_total": total_data,
        "floor_total": total_floor,
        "ratio_to_floor": round(total_data / total_floor, 3) if total_floor else None,
        "metadata_calls": meta,
        **({"bulk_jobs": jobs, "bulk_polls": polls, "rest_floor_total": rest_floor(info["sizes"])}
           if args.crm == "salesforce" else {}),
        "peak_rss_mib": round(rss_kib / 1024, 1),
        "big_fields": args.big_fields,
    }
    return result


def reconcile_report(config: Path, info: dict[str, Any], seconds: float, code: int,
                     run: dict[str, Any]) -> dict[str, Any]:
    """The reconcile run's calls per object against the floor, and the search walk's cost."""
    from crmsync.connectors.hubspot import HubSpotConnector
    from crmsync.state.model import ObjectType
    from crmsync.sync import config as config_mod

    sizes = info["sizes"]
    rec = run["counts"].get("reconcile", {})
    floor_ = {
        "accounts": math.ceil(sizes["companies"] / 100),
        "contacts": math.ceil(sizes["contacts"] / 100),
        "opportunities": math.ceil(sizes["deals"] / 100),
        "contact_roles": math.ceil(sizes["deals"] / 1000),
    }
    if "tasks" in rec:  # crmsync's own tasks (after `crmsync setup`): one search page here
        floor_["tasks"] = 1
    settings = config_mod.load(config).connectors["hubspot"]
    search: dict[str, int] = {}
    for obj in (ObjectType.ACCOUNT, ObjectType.CONTACT, ObjectType.OPPORTUNITY):
        conn = HubSpotConnector(settings)
        ids = conn.puller.reconcile_ids(obj, via="search")
        listed = sum(1 for _ in ids or ())
        search[obj.value] = conn.calls.total
        assert listed == rec.get(obj.value, {}).get("listed", listed)
    pulled = run["counts"].get("pull", {})
    return {
        "crm": "hubspot",
        "sizes": sizes,
        "exit_code": code,
        "outcome": run["outcome"],
        "seconds": round(seconds, 1),
        "incremental_data_calls": {t: o.get("data_calls", 0) for t, o in pulled.items()},
        "incremental_calls_by_operation": run["api_by_operation"],
        "reconcile": rec,
        "reconcile_calls": sum(o.get("api_calls", 0) for o in rec.values()),
        "reconcile_floor": floor_,
        "reconcile_floor_total": sum(floor_.values()),
        "search_walk_calls": search,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--crm", choices=("salesforce", "hubspot"), required=True)
    p.add_argument("--contacts", type=int, default=100_000)
    p.add_argument("--accounts", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--bulk", choices=("auto", "never", "always"), default="auto",
                   help="[salesforce] bulk setting for the run")
    p.add_argument("--bulk-job-seconds", type=float, default=0.0,
                   help="Salesforce sandbox: modelled Bulk 2.0 job latency")
    p.add_argument("--requests-per-10s", type=int, default=100, help="[hubspot] client limit")
    p.add_argument("--searches-per-second", type=int, default=4, help="[hubspot] client limit")
    p.add_argument("--json", action="store_true", help="print the result as JSON only")
    p.add_argument("--big-fields", action="store_true",
                   help="X3: ~60 KB contacts (Salesforce: two long text areas, 131,072 chars on "
                        "every 50th; HubSpot: a 60,000-char property, 100,000 on every 50th)")
    p.add_argument("--reconcile", action="store_true",
                   help="[hubspot] after the full pull, measure `sync --reconcile --pull-only`")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--dir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        serve(args)
        return
    with tempfile.TemporaryDirectory(prefix="crmsync-bench-") as tmp:
        workdir = Path(tmp)
        t0 = time.monotonic()
        proc, info = start_sandbox(args, workdir)
        try:
            if not args.json:
                print(f"sandbox ready in {time.monotonic() - t0:.1f}s: {info['sizes']}", flush=True)
            config = configure(workdir, args)
            seconds, code, rss = run_pull(config, args.crm)
            if code != 0:
                tail = (workdir / "crmsync.log").read_text(errors="replace")[-3000:]
                print(f"crmsync exited {code}:\n{tail}", file=sys.stderr)
            server = sandbox_requests(info)
            result = report(args, info, seconds, code, rss, last_run(workdir / "crmsync.db"), server)
            if args.reconcile:
                seconds, code, _ = run_pull(config, args.crm, "--reconcile")
                result = {"full_pull": result,
                          **reconcile_report(config, info, seconds, code,
                                             last_run(workdir / "crmsync.db"))}
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=60)
    if args.json:
        print(json.dumps(result))
        return
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
