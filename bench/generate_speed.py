"""Generator speed and memory: time and peak RSS to generate N contacts.

Each measurement runs in its own child process, so peak RSS (ru_maxrss) is that
generation's alone. Default: 100k and 1M contacts (10 per account), one CRM at
a time, plus both CRMs together at 100k (the < 15 s target). Wall time suffers on a shared machine; the cpu column
is the process's own CPU time.

    .venv/bin/python bench/generate_speed.py                 # all default cases
    .venv/bin/python bench/generate_speed.py --contacts 100000 --crm hubspot
    .venv/bin/python bench/generate_speed.py --stream        # iter_records, no lists kept
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PER_ACCOUNT = 10


def measure(contacts: int, crms: tuple[str, ...], stream: bool) -> dict[str, object]:
    """Generate in this process; answer seconds, peak RSS and record counts."""
    sys.path.insert(0, str(ROOT))
    from crmsync.sandbox.generate import generate, iter_records

    accounts = max(1, contacts // PER_ACCOUNT)
    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start, cpu_start = time.perf_counter(), time.process_time()
    if stream:
        manifest: dict[str, object] = {}
        n = sum(1 for _ in iter_records(1, accounts, crms=crms, manifest=manifest))
    else:
        data = generate(1, accounts, crms=crms)
        n = sum(len(v) for crm in crms for v in data[crm].values())
        manifest = data["manifest"]
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    counts = manifest[crms[0]]["counts"]  # type: ignore[index]
    return {
        "crms": "+".join(crms),
        "mode": "stream" if stream else "dict",
        "accounts": accounts,
        "contacts": counts.get("Contact", counts.get("contacts")),
        "records": n,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu_seconds, 2),
        "records_per_second": int(n / seconds),
        "peak_rss_mb": round(peak_kb / 1024),
        "baseline_rss_mb": round(base_kb / 1024),
    }


def run_child(contacts: int, crms: tuple[str, ...], stream: bool) -> dict[str, object]:
    args = [
        sys.executable,
        __file__,
        "--child",
        "--contacts",
        str(contacts),
        "--crm",
        ",".join(crms),
    ]
    if stream:
        args.append("--stream")
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--contacts", type=int, action="append", help="contacts (repeatable)")
    ap.add_argument(
        "--crm", action="append", help="salesforce | hubspot | salesforce,hubspot (repeatable)"
    )
    ap.add_argument(
        "--stream", action="store_true", help="use iter_records without keeping records"
    )
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ns = ap.parse_args()
    if ns.child:
        print(json.dumps(measure(ns.contacts[0], tuple(ns.crm[0].split(",")), ns.stream)))
        return
    if ns.contacts or ns.crm:
        cases = [
            (n, tuple(c.split(",")))
            for n in ns.contacts or [100_000]
            for c in ns.crm or ["salesforce", "hubspot"]
        ]
    else:
        cases = [
            (100_000, ("salesforce", "hubspot")),
            (100_000, ("salesforce",)),
            (100_000, ("hubspot",)),
            (1_000_000, ("salesforce",)),
            (1_000_000, ("hubspot",)),
        ]
    print(
        f"{'crms':<20} {'mode':<7} {'contacts':>9} {'records':>9} {'wall s':>7} {'cpu s':>7} {'rec/s':>9} {'peak MB':>8}"
    )
    for contacts, crms in cases:
        r = run_child(contacts, crms, ns.stream)
        print(
            f"{r['crms']:<20} {r['mode']:<7} {r['contacts']:>9} {r['records']:>9} {r['seconds']:>7} {r['cpu_seconds']:>7} "
            f"{r['records_per_second']:>9} {r['peak_rss_mb']:>8}",
            flush=True,
        )


if __name__ == "__main__":
    main()
