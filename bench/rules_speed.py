"""How fast the rules run: synthetic AccountViews in memory (no database, no HTTP).

Builds N accounts with M contacts each (defaults: 100,000 x 10 = 1,000,000
contacts) with a realistic mix of cases (tiers, open/won/lost deals, buying
roles, hard and soft bounces, invalid and shared addresses, departure titles,
moved champions), runs `rules.evaluate_account` over every one, and reports
the time per account and the peak memory.

    .venv/bin/python bench/rules_speed.py                     # stream views (flat memory)
    .venv/bin/python bench/rules_speed.py --materialize       # build all views first
    .venv/bin/python bench/rules_speed.py --accounts 10000 --json

Streaming is how sync/ feeds the rules (state/views.py yields one view at a
time); --materialize holds every view in memory at once, as the issue asked,
and shows what that costs. Evaluation time excludes building the views.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crmsync import rules  # noqa: E402
from crmsync.state.model import (  # noqa: E402
    Account,
    AccountView,
    Contact,
    ContactChange,
    ContactRole,
    Elsewhere,
    Opportunity,
)

AS_OF = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
TIERS = ("Strategic", "Growth", "Maintenance", "tier_1", "tier_2", None, "Gold")
TITLES = (
    "VP Sales",
    "CFO",
    "Head of IT",
    "Former VP",
    "Ex-CTO",
    "Director",
    "Engineer",
    "Leftwich",
)
ROLES = ("Champion", "Economic Buyer", "Decision Maker", "Evaluator", "CHAMPION", "BUDGET_HOLDER")


def synthetic_view(rng: random.Random, n: int, contacts_per_account: int) -> AccountView:
    aid = f"001{n:012d}"
    domain = f"company{n}.com"
    crm = "salesforce" if n % 2 else "hubspot"

    def ago(days: float) -> datetime:
        return AS_OF - timedelta(days=days)

    contacts = []
    for i in range(contacts_per_account):
        cid = f"003{n:010d}{i:02d}"
        r = rng.random()
        email: str | None = f"person{i}.x{n}@{domain}"
        bounced, reason = False, None
        if r < 0.03:
            bounced, reason = True, "550 5.1.1 user unknown"
        elif r < 0.05:
            bounced, reason = True, "452 4.2.2 mailbox full; bounced 3 times"
        elif r < 0.06:
            email = f"person{i}@@{domain}"
        elif r < 0.07:
            email = None
        elif r < 0.09:
            email = f"info@{domain}"
        contacts.append(
            Contact(
                crm=crm,
                id=cid,
                account_id=aid,
                first_name=f"First{i}",
                last_name=f"Last{n}",
                email=email,
                title=rng.choice(TITLES),
                created_at=ago(rng.randint(0, 1500)),
                last_activity_at=ago(rng.randint(0, 500)) if rng.random() < 0.9 else None,
                email_bounced=bounced,
                bounce_reason=reason,
                bounced_at=ago(rng.randint(1, 100)) if bounced else None,
                left_company=rng.random() < 0.01,
            )
        )
    today = AS_OF.date()
    opps = [
        Opportunity(
            crm=crm,
            id=f"006{n:012d}",
            account_id=aid,
            name="Renewal",
            close_date=today + timedelta(days=rng.randint(-30, 400)),
        ),
        Opportunity(
            crm=crm,
            id=f"006{n:012d}W",
            account_id=aid,
            name="New business",
            is_closed=True,
            is_won=rng.random() < 0.5,
            close_date=today - timedelta(days=rng.randint(0, 700)),
        ),
    ]
    roles = [
        ContactRole(
            crm=crm,
            id=f"00K{n:010d}{k}",
            opportunity_id=rng.choice(opps).id,
            contact_id=contacts[rng.randrange(len(contacts))].id,
            role=rng.choice(ROLES),
        )
        for k in range(3)
    ]
    history: list[ContactChange] = []
    elsewhere: list[Elsewhere] = []
    if rng.random() < 0.05:  # a champion moved to another account
        moved = f"003{n:010d}MV"
        roles.append(
            ContactRole(
                crm=crm,
                id=f"00K{n:010d}MV",
                opportunity_id=opps[0].id,
                contact_id=moved,
                role="Champion",
            )
        )
        history.append(
            ContactChange(
                crm=crm,
                contact_id=moved,
                field="account_id",
                old=aid,
                new="001OTHER",
                seen_at=AS_OF - timedelta(days=3),
            )
        )
        elsewhere.append(
            Elsewhere(
                contact_id=moved,
                other_contact_id=moved,
                other_account_id="001OTHER",
                other_account_name="Globex",
                how="moved",
            )
        )
    return AccountView(
        account=Account(
            crm=crm,
            id=aid,
            name=f"Company {n}",
            domain=domain,
            tier=rng.choice(TIERS),
            renewal_date=date(2026, 9, 1) if rng.random() < 0.2 else None,
            exemption="snooze until 2026-06-01" if rng.random() < 0.01 else None,
        ),
        contacts=tuple(contacts),
        opportunities=tuple(opps),
        roles=tuple(roles),
        history=tuple(history),
        elsewhere=tuple(elsewhere),
    )


def views(accounts: int, contacts_per_account: int, seed: int) -> Iterator[AccountView]:
    rng = random.Random(seed)
    for n in range(accounts):
        yield synthetic_view(rng, n, contacts_per_account)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--accounts", type=int, default=100_000)
    p.add_argument("--contacts", type=int, default=10, help="contacts per account")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--materialize", action="store_true", help="build every view before evaluating")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)

    settings = rules.RuleSettings()
    rss_start = peak_rss_mb()
    build_s = 0.0
    t0 = time.perf_counter()
    source: Iterator[AccountView]
    if args.materialize:
        all_views = list(views(args.accounts, args.contacts, args.seed))
        build_s = time.perf_counter() - t0
        gc.freeze()  # the views live all run: keep the cyclic GC from rescanning them
        source = iter(all_views)
    else:
        source = views(args.accounts, args.contacts, args.seed)

    counts: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    eval_s = 0.0
    cpu_s = 0.0
    gc.collect()
    started = time.perf_counter()
    for view in source:
        t, c = time.perf_counter(), time.process_time()
        result = rules.evaluate_account(view, settings, AS_OF)
        eval_s += time.perf_counter() - t
        cpu_s += time.process_time() - c
        counts.update(f.rule for f in result.flags)
        statuses.update(s.status.value for s in result.contact_status.values())
    wall_s = time.perf_counter() - started + build_s

    report = {
        "accounts": args.accounts,
        "contacts": args.accounts * args.contacts,
        "mode": "materialized" if args.materialize else "streamed",
        "evaluate_seconds": round(eval_s, 2),
        "per_account_us": round(eval_s / max(1, args.accounts) * 1e6, 1),
        "per_contact_us": round(eval_s / max(1, args.accounts * args.contacts) * 1e6, 2),
        # CPU time is the steadier number on a busy machine (wall time includes waiting)
        "evaluate_cpu_seconds": round(cpu_s, 2),
        "per_account_cpu_us": round(cpu_s / max(1, args.accounts) * 1e6, 1),
        "build_and_evaluate_seconds": round(wall_s, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_at_start_mb": round(rss_start, 1),
        "flags": dict(sorted(counts.items())),
        "contact_status": dict(sorted(statuses.items())),
        "python": sys.version.split()[0],
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:28} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
