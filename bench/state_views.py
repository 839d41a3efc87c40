"""Mirror at scale: load 100k accounts / 1M contacts through apply_page, stream the views.

    .venv/bin/python bench/state_views.py                 # 100,000 accounts x 10 contacts
    .venv/bin/python bench/state_views.py --accounts 5000 # a quick look

Phase 1 builds the mirror with `mirror.apply_page` in pages of 2,000 (each page
committed with its cursor, as sync/pull.py does): accounts, contacts, one
opportunity per account, two roles per opportunity, then an incremental page
stream that moves 1% of the contacts to another account (contact_history). Phase
2 runs in a fresh child process, so its peak RSS is the views' alone: it
iterates `iter_account_views` over everything and counts what it saw.

Prints records/s for the load, views/s, wall and CPU seconds (CPU time is the
figure to compare on a shared machine), the number of SQL statements the views
issued, and peak RSS of each phase (VmHWM, else getrusage ru_maxrss).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crmsync.state import cursors, mirror, views  # noqa: E402
from crmsync.state.db import open_db  # noqa: E402
from crmsync.state.model import CrmRecord, ObjectType, Page  # noqa: E402

CRM = "salesforce"
PAGE = 2000
T0 = datetime(2026, 1, 1, tzinfo=UTC)
FIRST = [f"First{i}" for i in range(1000)]
LAST = [f"Last{i}" for i in range(2000)]


def _rss_mb() -> float:
    """Peak RSS of this process image (VmHWM; ru_maxrss survives exec on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _accounts(n: int) -> Iterator[CrmRecord]:
    for i in range(n):
        aid = f"001{i:015d}"
        yield CrmRecord(
            ObjectType.ACCOUNT, aid, T0,
            values={"name": f"Account {i}", "domain": f"a{i}.test", "owner_id": "005000000000001",
                    "tier": ("Strategic", "Growth", "Maintenance")[i % 3],
                    "renewal_date": date(2026, 1 + i % 12, 1)},
            raw={"Id": aid, "Name": f"Account {i}"},
        )  # fmt: skip


def _contact(i: int, account: int, rng: random.Random, minute: int = 0) -> CrmRecord:
    cid = f"003{i:015d}"
    first, last = FIRST[rng.randrange(len(FIRST))], LAST[rng.randrange(len(LAST))]
    return CrmRecord(
        ObjectType.CONTACT, cid, T0 + timedelta(minutes=minute),
        values={"account_id": f"001{account:015d}", "first_name": first, "last_name": last,
                "email": f"c{i}@a{account}.test", "title": "Director",
                "last_activity_at": T0 - timedelta(days=i % 400),
                "created_at": T0 - timedelta(days=800), "email_bounced": i % 50 == 0,
                "opted_out": False},
        raw={"Id": cid, "FirstName": first, "LastName": last, "Email": f"c{i}@a{account}.test"},
    )  # fmt: skip


def _contacts(n_accounts: int, per: int) -> Iterator[CrmRecord]:
    rng = random.Random(7)
    for i in range(n_accounts * per):
        yield _contact(i, i // per, rng)


def _opportunities(n: int) -> Iterator[CrmRecord]:
    for i in range(n):
        oid = f"006{i:015d}"
        yield CrmRecord(
            ObjectType.OPPORTUNITY, oid, T0,
            values={"account_id": f"001{i:015d}", "name": f"Renewal {i}", "stage": "Negotiation",
                    "is_closed": False, "is_won": False, "close_date": date(2026, 6, 30),
                    "amount": 1000.0 * (i % 7)},
            raw={"Id": oid},
        )  # fmt: skip


def _roles(n_accounts: int, per: int) -> Iterator[CrmRecord]:
    for i in range(n_accounts):
        for k, role in enumerate(("Champion", "Economic Buyer")):
            rid = f"00K{i * 2 + k:015d}"
            yield CrmRecord(
                ObjectType.CONTACT_ROLE, rid, T0,
                values={"opportunity_id": f"006{i:015d}",
                        "contact_id": f"003{i * per + k:015d}", "role": role,
                        "is_primary": k == 0},
                raw={"Id": rid},
            )  # fmt: skip


def _moves(db, n_accounts: int, per: int) -> Iterator[CrmRecord]:
    """1% of contacts move to another account (an incremental run after the full one)."""
    rng = random.Random(11)
    for i in range(0, n_accounts * per, 100):
        old = views.load_contact(db, CRM, f"003{i:015d}")
        assert old is not None
        yield CrmRecord(
            ObjectType.CONTACT, old.id, T0 + timedelta(minutes=5),
            values={"account_id": f"001{rng.randrange(n_accounts):015d}",
                    "first_name": old.first_name, "last_name": old.last_name,
                    "email": f"moved{i}@elsewhere.test", "title": "Former Director",
                    "created_at": old.created_at, "last_activity_at": old.last_activity_at,
                    "email_bounced": old.email_bounced, "opted_out": False},
            raw={"Id": old.id},
        )  # fmt: skip


def _pages(records: Iterator[CrmRecord], obj: ObjectType) -> Iterator[Page]:
    batch: list[CrmRecord] = []
    for r in records:
        batch.append(r)
        if len(batch) == PAGE:
            yield Page(obj, batch, {"after": batch[-1].id})
            batch = []
    if batch:
        yield Page(obj, batch, {"after": batch[-1].id}, done=True)


def build(path: Path, n_accounts: int, per: int) -> dict[str, float]:
    db = open_db(path)
    total = 0
    cpu = _cpu_seconds()
    started = time.perf_counter()
    sources = (
        (ObjectType.ACCOUNT, _accounts(n_accounts)),
        (ObjectType.CONTACT, _contacts(n_accounts, per)),
        (ObjectType.OPPORTUNITY, _opportunities(n_accounts)),
        (ObjectType.CONTACT_ROLE, _roles(n_accounts, per)),
    )
    for obj, records in sources:
        with db.conn:
            generation = cursors.begin_full(db, CRM, obj)
        for page in _pages(records, obj):
            with db.conn:
                mirror.apply_page(db, CRM, page, generation=generation, seen_at=T0)
                cursors.save(db, CRM, obj, page.cursor, mode="full")
            total += len(page.records)
        with db.conn:
            mirror.finish_full(db, CRM, obj, generation, T0)
    load_s = time.perf_counter() - started
    load_cpu = _cpu_seconds() - cpu
    moved = 0
    started = time.perf_counter()
    generation = cursors.get(db, CRM, ObjectType.CONTACT).generation
    moves = list(_moves(db, n_accounts, per))
    history = 0
    for page in _pages(iter(moves), ObjectType.CONTACT):
        with db.conn:
            result = mirror.apply_page(db, CRM, page, generation=generation, seen_at=T0)
        moved += result.updated
        history += result.history_rows
    move_s = time.perf_counter() - started
    db.conn.execute("ANALYZE")
    db.close()
    return {
        "records": total,
        "load_seconds": round(load_s, 1),
        "load_cpu_seconds": round(load_cpu, 1),
        "records_per_second": round(total / load_s),
        "moved_contacts": moved,
        "history_rows": history,
        "incremental_seconds": round(move_s, 1),
        "build_peak_rss_mb": round(_rss_mb(), 1),
        "db_size_mb": round(path.stat().st_size / 2**20, 1),
    }


def scan(path: Path) -> dict[str, float]:
    db = open_db(path)
    statements = 0

    def trace(_: str) -> None:
        nonlocal statements
        statements += 1

    baseline = _rss_mb()
    db.conn.set_trace_callback(trace)
    cpu = _cpu_seconds()
    started = time.perf_counter()
    n = contacts = roles = history = elsewhere = former = 0
    first_at = None
    for view in views.iter_account_views(db):
        if first_at is None:
            first_at = time.perf_counter() - started
        n += 1
        contacts += len(view.contacts)
        roles += len(view.roles)
        history += len(view.history)
        elsewhere += len(view.elsewhere)
        former += len(view.former_contacts)
    seconds = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu
    db.conn.set_trace_callback(None)
    return {
        "views": n,
        "view_contacts": contacts,
        "roles": roles,
        "history": history,
        "elsewhere": elsewhere,
        "former_contacts": former,
        "sql_statements": statements,
        "first_view_seconds": round(first_at or 0.0, 2),
        "views_seconds": round(seconds, 1),
        "views_cpu_seconds": round(cpu, 1),
        "views_per_second": round(n / seconds),
        "rss_before_mb": round(baseline, 1),
        "views_peak_rss_mb": round(_rss_mb(), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--contacts-per-account", type=int, default=10)
    parser.add_argument("--db", type=Path, help="reuse/keep this mirror file")
    parser.add_argument("--scan-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scan_only:
        print(json.dumps(scan(args.db)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "bench.db"
        out: dict[str, object] = {
            "accounts": args.accounts,
            "contacts": args.accounts * args.contacts_per_account,
        }
        if not path.exists():
            out.update(build(path, args.accounts, args.contacts_per_account))
        child = subprocess.run(
            [sys.executable, __file__, "--scan-only", "--db", str(path)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        out.update(json.loads(child.stdout))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
