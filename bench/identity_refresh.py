"""[identity]'s cost on a big mirror: recomputing the links, and the rules' views with the
linked evidence merged in (state/identity.py).

    .venv/bin/python bench/identity_refresh.py --contacts 100000 [--accounts 20000]

Fills one mirror with the same org in both CRMs (`--contacts` contacts and `--accounts`
accounts each, through state/mirror.py `apply_page`); every second HubSpot contact and
company carries its Salesforce id (api-facts §24), the rest match by e-mail / domain, and
one e-mail in 1,000 is shared by two Salesforce contacts (ambiguous). Prints CPU seconds
of: the first refresh (every link new), a second refresh over unchanged mirrors (nothing
written), and one pass over the Salesforce account views without and with the evidence
merge; and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crmsync.state import identity, mirror, views
from crmsync.state.db import open_db
from crmsync.state.model import CrmRecord, ObjectType, Page

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def sf_id(prefix: str, n: int) -> str:
    return f"{prefix}5g{n:011d}AAA"  # 18 characters, like a Salesforce id


def records(crm: str, contacts: int, accounts: int) -> dict[ObjectType, list[CrmRecord]]:
    out: dict[ObjectType, list[CrmRecord]] = {ObjectType.ACCOUNT: [], ObjectType.CONTACT: []}
    for a in range(accounts):
        rid = sf_id("001", a) if crm == "salesforce" else str(100_000_000 + a)
        props: dict[str, Any] = {"domain": f"acct{a}.test"}
        if crm == "hubspot" and a % 2 == 0:
            props["salesforceaccountid"] = sf_id("001", a)
        out[ObjectType.ACCOUNT].append(
            CrmRecord(ObjectType.ACCOUNT, rid, T0, values={"name": f"Account {a}", "domain": f"acct{a}.test"},
                      raw={"id": rid, "properties": props})
        )  # fmt: skip
    for c in range(contacts):
        a = c % accounts
        rid = sf_id("003", c) if crm == "salesforce" else str(200_000_000 + c)
        acc = sf_id("001", a) if crm == "salesforce" else str(100_000_000 + a)
        # one Salesforce contact in 1,000 has the e-mail of another (ambiguous)
        e = c - 2 if crm == "salesforce" and c % 1000 == 3 else c
        email = f"p{e}@acct{e % accounts}.test"
        props = {"email": email}
        if crm == "hubspot" and c % 2 == 0:
            props["salesforcecontactid"] = sf_id("003", c)
        values = {
            "account_id": acc, "first_name": "P", "last_name": str(c), "email": email,
            "last_activity_at": T0 - timedelta(days=(c * 7) % 400 if crm == "salesforce" else (c * 3) % 400),
            "email_bounced": crm == "hubspot" and c % 97 == 0,
        }  # fmt: skip
        out[ObjectType.CONTACT].append(
            CrmRecord(ObjectType.CONTACT, rid, T0, values=values, raw={"id": rid, "properties": props})
        )
    return out


def cpu(label: str, f: Callable[[], Any]) -> Any:
    start = time.process_time()
    result = f()
    print(f"{label:<48} {time.process_time() - start:7.2f} s CPU")
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=100_000)
    ap.add_argument("--accounts", type=int, default=20_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = open_db(Path(tmp) / "mirror.db")
        for crm in ("salesforce", "hubspot"):
            for obj, recs in records(crm, args.contacts, args.accounts).items():
                for i in range(0, len(recs), 5000):
                    with db.conn:
                        mirror.apply_page(db, crm, Page(obj, recs[i : i + 5000], None), generation=0, seen_at=T0)
        print(f"mirror: {args.contacts:,} contacts and {args.accounts:,} accounts in each CRM")
        first = cpu("refresh, every link new", lambda: identity.refresh(db, now=T0))
        print(f"  {first.as_dict()}")
        again = cpu("refresh again, nothing changed", lambda: identity.refresh(db, now=T0))
        print(f"  added {again.added}, removed {again.removed}")
        cpu("salesforce views, without evidence", lambda: sum(1 for _ in views.iter_account_views(db, "salesforce")))
        cpu(
            "salesforce views, with linked evidence",
            lambda: sum(1 for _ in identity.with_linked_evidence(
                db, "salesforce", views.iter_account_views(db, "salesforce"))),
        )  # fmt: skip
        db.close()
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB (whole process)")


if __name__ == "__main__":
    main()
