"""Benchmark of the HubSpot emulator itself: load time, page latency, records/s, memory.

Numbers the issue asks for: records served per second for list pages at 100k
contacts (through the real hubspot-api-client over loopback HTTP), search page
latency, and peak RSS holding 1,000,000 contacts. Contacts are synthesised
here (streamed into the emulator, so the dataset is never held twice) unless
`--generator` asks for sandbox.generate.

    .venv/bin/python bench/sandbox_hubspot.py                 # 100k list + 1M memory
    .venv/bin/python bench/sandbox_hubspot.py --contacts 100000 --skip-1m
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hubspot import HubSpot  # noqa: E402

from crmsync.sandbox.hubspot import HubSpotSandbox  # noqa: E402

TITLES = ["VP Sales", "Head of Operations", "CFO", "Engineer", "Former CTO", "Account Manager"]
PROPS = ["email", "firstname", "lastname", "jobtitle", "hubspot_owner_id", "notes_last_contacted",
         "createdate", "lastmodifieddate", "hs_email_hard_bounce_reason_enum", "hs_email_optout",
         "hs_buying_role"]


def synth_contacts(n: int, companies: int) -> Iterator[dict[str, Any]]:
    base = 1_767_225_600_000  # 2026-01-01
    for i in range(n):
        cid = 1_000_000 + i % companies
        yield {"id": str(10_000_000 + i), "properties": {
            "email": f"person{i}@company{i % companies}.example.com",
            "firstname": f"First{i}", "lastname": f"Last{i}",
            "jobtitle": TITLES[i % len(TITLES)], "hubspot_owner_id": str(100 + i % 20),
            "notes_last_contacted": _iso(base - (i % 400) * 86_400_000),
            "createdate": _iso(base - 500 * 86_400_000 + i),
            "lastmodifieddate": _iso(base + i * 7),
            "hs_email_hard_bounce_reason_enum": "UNKNOWN_USER" if i % 50 == 0 else None,
            "hs_email_optout": "false", "hs_buying_role": "CHAMPION" if i % 97 == 0 else None},
            "associations": {"companies": [{"id": str(cid), "label": "primary"}]}}


def synth_dataset(n: int) -> dict[str, Any]:
    companies = max(1, n // 5)
    return {
        "owners": [{"id": str(100 + k), "email": f"owner{k}@example.com", "firstName": "O",
                    "lastName": str(k), "userId": 500 + k} for k in range(20)],
        "companies": ({"id": str(1_000_000 + k), "properties": {
            "name": f"Company {k}", "domain": f"company{k}.example.com",
            "hs_ideal_customer_profile": f"tier_{k % 3 + 1}"}} for k in range(companies)),
        "contacts": synth_contacts(n, companies),
    }


def _iso(ms: int) -> str:
    from crmsync.sandbox.hubspot.store import iso

    return iso(ms)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_list(n: int, use_generator: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    if use_generator:
        from crmsync.sandbox.generate import generate  # type: ignore[import-not-found]

        dataset = generate(seed=1, accounts=max(1, n // 10))  # ~10 contacts per account
    else:
        dataset = {"hubspot": synth_dataset(n)}
    hs = HubSpotSandbox()
    hs.crm.load(dataset, copy=False)
    load_s = time.perf_counter() - t0
    contacts = len(hs.store.tables["contacts"])
    with hs:
        client = HubSpot(access_token="pat-sandbox-0000", host=hs.url)
        basic = client.crm.contacts.basic_api
        search = client.crm.contacts.search_api
        after, served, lat = None, 0, []
        t1 = time.perf_counter()
        c1 = time.process_time()
        while True:
            t = time.perf_counter()
            page = basic.get_page(limit=100, after=after, properties=PROPS, associations=["companies"])
            lat.append(time.perf_counter() - t)
            served += len(page.results)
            if not page.paging or not page.paging.next:
                break
            after = page.paging.next.after
        list_s = time.perf_counter() - t1
        list_cpu = time.process_time() - c1
        s_lat = []
        body = {"filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE",
                                               "value": "1767225600000"}]}],
                "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
                "properties": PROPS, "limit": 200}
        for k in range(50):
            t = time.perf_counter()
            search.do_search(public_object_search_request={**body, "after": str(k * 200)})
            s_lat.append(time.perf_counter() - t)
    return {"contacts": contacts, "load_s": round(load_s, 2), "list_pages": len(lat),
            "list_records_per_s": round(served / list_s),
            "list_records_per_cpu_s": round(served / list_cpu),  # client + server, one process
            "server_list_page_ms": server_page_ms(hs),
            "list_page_ms_p50": round(statistics.median(lat) * 1000, 2),
            "list_page_ms_p95": round(sorted(lat)[int(len(lat) * 0.95)] * 1000, 2),
            "search_first_page_ms": round(s_lat[0] * 1000, 2),
            "search_page_ms_p50": round(statistics.median(s_lat) * 1000, 2)}


def server_page_ms(hs: HubSpotSandbox, pages: int = 200) -> float:
    """CPU ms the emulator spends per 100-record list page (no HTTP, no client)."""
    from werkzeug.test import Client

    c = Client(hs.app)
    h = {"Authorization": "Bearer pat-sandbox-0000"}
    q = "&".join("properties=" + p for p in PROPS)
    after = ""
    t = time.thread_time()
    for _ in range(pages):
        r = c.get(f"/crm/v3/objects/contacts?limit=100&associations=companies&{q}"
                  + (f"&after={after}" if after else ""), headers=h)
        after = r.json["paging"]["next"]["after"]
    return round((time.thread_time() - t) / pages * 1000, 2)


def server_search_ms(hs: HubSpotSandbox) -> tuple[float, float]:
    """CPU ms for the first search page (runs the query) and a later page (cached)."""
    from werkzeug.test import Client

    c = Client(hs.app)
    h = {"Authorization": "Bearer pat-sandbox-0000"}
    body = {"filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE",
                                           "value": "1767225600000"}]}],
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            "properties": PROPS, "limit": 200}
    t = time.thread_time()
    c.post("/crm/v3/objects/contacts/search", json={**body, "after": "0"}, headers=h)
    first = time.thread_time() - t
    t = time.thread_time()
    for k in range(1, 11):
        c.post("/crm/v3/objects/contacts/search", json={**body, "after": str(k * 200)}, headers=h)
    return round(first * 1000, 1), round((time.thread_time() - t) / 10 * 1000, 2)


def bench_memory(n: int) -> dict[str, Any]:
    before = rss_mb()
    t0 = time.perf_counter()
    c0 = time.process_time()
    hs = HubSpotSandbox()
    hs.crm.load({"hubspot": synth_dataset(n)}, copy=False)
    load_s = time.perf_counter() - t0
    out: dict[str, Any] = {"contacts": len(hs.store.tables["contacts"]), "load_s": round(load_s, 1),
                           "load_cpu_s": round(time.process_time() - c0, 1),
                           "server_list_page_ms": server_page_ms(hs),
                           "server_search_ms_first_and_cached": server_search_ms(hs),
                           "peak_rss_mb": round(rss_mb()), "rss_before_mb": round(before)}
    with hs:
        client = HubSpot(access_token="pat-sandbox-0000", host=hs.url)
        basic = client.crm.contacts.basic_api
        lat = []
        after = None
        for _ in range(20):
            t = time.perf_counter()
            page = basic.get_page(limit=100, after=after, properties=PROPS, associations=["companies"])
            lat.append(time.perf_counter() - t)
            after = page.paging.next.after
        body = {"filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE",
                                               "value": "1767225600000"}]}],
                "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
                "properties": PROPS, "limit": 200}
        search = client.crm.contacts.search_api
        s_lat = []
        for k in range(10):
            t = time.perf_counter()
            search.do_search(public_object_search_request={**body, "after": str(k * 200)})
            s_lat.append(time.perf_counter() - t)
    out["list_page_ms_p50"] = round(statistics.median(lat) * 1000, 2)
    out["search_first_page_ms"] = round(s_lat[0] * 1000, 1)
    out["search_next_page_ms_p50"] = round(statistics.median(s_lat[1:]) * 1000, 2)
    out["peak_rss_mb_after_requests"] = round(rss_mb())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contacts", type=int, default=100_000)
    ap.add_argument("--memory-contacts", type=int, default=1_000_000)
    ap.add_argument("--skip-1m", action="store_true")
    ap.add_argument("--skip-list", action="store_true")
    ap.add_argument("--generator", action="store_true", help="use sandbox.generate for the list bench")
    args = ap.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per request
    results = {} if args.skip_list else {"list": bench_list(args.contacts, args.generator)}
    if not args.skip_1m:
        import gc

        gc.collect()
        results["memory"] = bench_memory(args.memory_contacts)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
