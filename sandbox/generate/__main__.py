"""Write a generated org as a dataset JSON file: `python -m crmsync.sandbox.generate --accounts 50 -o org.json`.

The file loads with `crmsync sandbox salesforce|hubspot --data FILE`.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from . import CRMS, generate


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m crmsync.sandbox.generate", description=__doc__)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--accounts", type=int, default=50)
    ap.add_argument("--contacts-per-account", type=float, default=None)
    ap.add_argument("--as-of", type=datetime.fromisoformat, default=None, help="ISO datetime")
    ap.add_argument("--crm", action="append", choices=CRMS, help="repeatable; default both")
    ap.add_argument("--bad-records", action="store_true")
    ap.add_argument("-o", "--output", default="-", help="file path, or - for stdout")
    ns = ap.parse_args(argv)
    data = generate(
        ns.seed,
        ns.accounts,
        contacts_per_account=ns.contacts_per_account,
        as_of=ns.as_of,
        crms=tuple(ns.crm or CRMS),
        bad_records=ns.bad_records,
    )
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, indent=1)
    if ns.output == "-":
        sys.stdout.write(text + "\n")
    else:
        with open(ns.output, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
