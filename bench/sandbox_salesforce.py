"""Benchmark the Salesforce sandbox: query pages per second and memory at scale.

    .venv/bin/python bench/sandbox_salesforce.py                 # 100k contacts + 1M memory run
    .venv/bin/python bench/sandbox_salesforce.py --contacts 20000 --memory-contacts 0

Measures, at --contacts contacts (default 100,000):
- load time;
- in-process: query start (compile, filter, snapshot) and per-page time to
  render and JSON-encode 2,000-record pages (the emulator's own cost);
- over HTTPS with unmodified simple-salesforce (query_all_iter, batchSize 2000):
  records/s and ms per page end to end;
- an incremental `SystemModstamp >=` query over the newest 1% (bisect on the index);
and, in a fresh subprocess, peak RSS with --memory-contacts (default 1,000,000)
loaded from a stream (no dataset dict held), plus one 2,000-record page there.

Data comes from sandbox.generate.iter_records (the project's generator);
--synthetic uses simple made-up contacts instead (faster to build).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crmsync.connectors.salesforce.transport import build_session  # noqa: E402
from crmsync.sandbox.common import sf_id  # noqa: E402
from crmsync.sandbox.salesforce import PASSWORD, SECURITY_TOKEN, USERNAME, SalesforceSandbox  # noqa: E402
from crmsync.sandbox.salesforce.soql import compile_query  # noqa: E402

FIELDS = (
    "Id, AccountId, FirstName, LastName, Email, Title, OwnerId, LastActivityDate, CreatedDate, "
    "IsEmailBounced, EmailBouncedReason, EmailBouncedDate, HasOptedOutOfEmail, MasterRecordId, "
    "IsDeleted, SystemModstamp"
)
CONTACTS_PER_ACCOUNT = 10.0


def stream(contacts: int, synthetic: bool) -> Iterator[tuple[str, dict[str, Any]]]:
    """(object, record) pairs for about `contacts` contacts."""
    if not synthetic:
        from crmsync.sandbox.generate import iter_records

        accounts = max(1, round(contacts / CONTACTS_PER_ACCOUNT))
        for _crm, obj, rec in iter_records(seed=1, accounts=accounts, crms=("salesforce",),
                                           contacts_per_account=CONTACTS_PER_ACCOUNT):
            yield obj, rec
        return
    owner = sf_id("005", 1)
    yield "User", {"Id": owner, "LastName": "Owner", "Email": "o@x.test", "Username": "o@x.test"}
    accounts = max(1, contacts // 10)
    for a in range(1, accounts + 1):
        yield "Account", {"Id": sf_id("001", a), "Name": f"Account {a}", "OwnerId": owner,
                          "Tier__c": ("Strategic", "Growth", "Maintenance")[a % 3]}
    for i in range(1, contacts + 1):
        minute, sec = divmod(i, 60)
        yield "Contact", {
            "Id": sf_id("003", i), "AccountId": sf_id("001", 1 + i % accounts), "FirstName": f"First{i}",
            "LastName": f"Last{i}", "Email": f"person{i}@example{i % 997}.com", "Title": "Engineer",
            "OwnerId": owner, "LastActivityDate": "2026-09-01", "IsEmailBounced": i % 50 == 0,
            "HasOptedOutOfEmail": False,
            "CreatedDate": "2025-01-01T00:00:00.000+0000",
            "SystemModstamp": f"2026-{1 + (minute // 44640) % 12:02d}-01T{(minute // 60) % 24:02d}:{minute % 60:02d}:{sec:02d}.000+0000",
        }


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load(contacts: int, synthetic: bool) -> tuple[SalesforceSandbox, float]:
    sb = SalesforceSandbox()
    t0 = time.perf_counter()
    sb.load_stream(stream(contacts, synthetic))
    return sb, time.perf_counter() - t0


def in_process(sb: SalesforceSandbox, text: str, include_deleted: bool = True) -> dict[str, float]:
    t0 = time.perf_counter()
    q = compile_query(sb.store, text)
    rows = q.run(include_deleted)
    start_ms = (time.perf_counter() - t0) * 1000
    page_ms = []
    for i in range(0, min(len(rows), 20 * 2000), 2000):
        t1 = time.perf_counter()
        with sb.store.lock:  # what the server does per page: slice the snapshot, render JSON
            sb.app._page("59.0", "01gBENCH", q, rows, i, 2000, include_deleted).payload()
        page_ms.append((time.perf_counter() - t1) * 1000)
    return {"rows": len(rows), "query_start_ms": round(start_ms, 1),
            "page_ms_median": round(statistics.median(page_ms), 1) if page_ms else 0.0,
            "page_ms_max": round(max(page_ms), 1) if page_ms else 0.0}


def over_https(sb: SalesforceSandbox, text: str) -> dict[str, float]:
    from simple_salesforce import Salesforce

    session = build_session(login_url=sb.url, instance_url=sb.url, ca_file=sb.ca_file)
    sf = Salesforce(username=USERNAME, password=PASSWORD, security_token=SECURITY_TOKEN, session=session)
    sb.requests.reset()
    t0 = time.perf_counter()
    n = sum(1 for _ in sf.query_all_iter(text, include_deleted=True,
                                         headers={"Sforce-Query-Options": "batchSize=2000"}))
    wall = time.perf_counter() - t0
    pages = sb.requests.count("query*")
    return {"records": n, "pages": pages, "seconds": round(wall, 2),
            "records_per_s": round(n / wall), "ms_per_page": round(wall * 1000 / pages, 1)}


def raw_https(sb: SalesforceSandbox, text: str) -> dict[str, float]:
    """The same pull with plain requests + json.loads: server and transport cost without
    simple-salesforce's OrderedDict parsing."""
    from simple_salesforce import Salesforce

    session = build_session(login_url=sb.url, instance_url=sb.url, ca_file=sb.ca_file)
    sf = Salesforce(username=USERNAME, password=PASSWORD, security_token=SECURITY_TOKEN, session=session)
    headers = {"Authorization": f"Bearer {sf.session_id}", "Sforce-Query-Options": "batchSize=2000"}
    t0 = time.perf_counter()
    page = session.get(f"{sb.url}/services/data/v59.0/queryAll/", params={"q": text}, headers=headers).json()
    n, pages = len(page["records"]), 1
    while not page["done"]:
        page = session.get(sb.url + page["nextRecordsUrl"], headers=headers).json()
        n, pages = n + len(page["records"]), pages + 1
    wall = time.perf_counter() - t0
    return {"records": n, "pages": pages, "seconds": round(wall, 2),
            "records_per_s": round(n / wall), "ms_per_page": round(wall * 1000 / pages, 1)}


def throughput(contacts: int, synthetic: bool) -> dict[str, Any]:
    sb, load_s = load(contacts, synthetic)
    t = sb.store.table("Contact")
    out: dict[str, Any] = {"contacts": len(t.rows), "load_s": round(load_s, 1),
                           "load_records_per_s": round(len(t.rows) / load_s)}
    full = f"SELECT {FIELDS} FROM Contact ORDER BY SystemModstamp, Id"
    out["in_process_full"] = in_process(sb, full)
    out["in_process_parent_fields"] = in_process(
        sb, f"SELECT {FIELDS}, Account.Name, Account.Owner.Email FROM Contact WHERE Email != null")
    cutoff = t.mod_stamps[int(len(t.mod_stamps) * 0.99)]
    cut = cutoff.replace(".000+0000", "Z")
    out["in_process_incremental_1pct"] = in_process(
        sb, f"SELECT {FIELDS} FROM Contact WHERE SystemModstamp >= {cut} ORDER BY SystemModstamp, Id")
    sb.start()
    try:
        out["https_full_pull_simple_salesforce"] = over_https(sb, full)
        out["https_full_pull_plain_requests"] = raw_https(sb, full)
    finally:
        sb.stop()
    out["rss_mb"] = round(rss_mb())
    return out


def memory(contacts: int, synthetic: bool) -> dict[str, Any]:
    before = rss_mb()
    sb, load_s = load(contacts, synthetic)
    t = sb.store.table("Contact")
    after = rss_mb()
    page = in_process(sb, f"SELECT {FIELDS} FROM Contact WHERE SystemModstamp >= 2000-01-01T00:00:00Z LIMIT 2000")
    return {"contacts": len(t.rows), "load_s": round(load_s, 1),
            "rss_before_mb": round(before), "rss_after_load_mb": round(after),
            "peak_rss_mb": round(peak_rss_mb()),
            "bytes_per_contact_incl_other_objects": round((after - before) * 2**20 / len(t.rows)),
            "page_2000": page}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contacts", type=int, default=100_000)
    ap.add_argument("--memory-contacts", type=int, default=1_000_000, help="0 skips the memory run")
    ap.add_argument("--synthetic", action="store_true", help="made-up contacts instead of sandbox.generate")
    ap.add_argument("--only-memory", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if args.only_memory:
        print(json.dumps(memory(args.memory_contacts, args.synthetic)))
        return
    result = {"throughput": throughput(args.contacts, args.synthetic)}
    print(json.dumps(result, indent=2), flush=True)
    if args.memory_contacts:
        cmd = [sys.executable, __file__, "--only-memory", "--memory-contacts", str(args.memory_contacts)]
        if args.synthetic:
            cmd.append("--synthetic")
        mem = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        print(json.dumps({"memory": mem}, indent=2))


if __name__ == "__main__":
    main()
