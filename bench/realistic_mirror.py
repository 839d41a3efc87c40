"""A mirror holding the project's generated org (sandbox/generate), loaded without HTTP.

    .venv/bin/python bench/realistic_mirror.py --contacts 100000 PATH

The generator (`sandbox.generate.iter_records`, seed 1) streams a Salesforce org
with its realistic proportions: a few percent bouncing, stale, departed or
single-threaded, most contacts fine. Each record goes through the Salesforce
connector's own field map (`Resolved.to_record`, as a pull converts a REST
record) into `mirror.apply_page`, in pages of 2,000 per object, each a full pull
of that object (begin_full .. finish_full). Tasks are left out (the generated
ones are people's tasks, which a pull filters out: crmsync's carry its key).
No network, no sandbox process: only the conversion and the mirror's writes.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crmsync.connectors.salesforce.client import Settings  # noqa: E402
from crmsync.connectors.salesforce.fields import (  # noqa: E402
    SOBJECTS,
    FieldInfo,
    Resolved,
    object_maps,
)
from crmsync.state import cursors, mirror  # noqa: E402
from crmsync.state.db import open_db  # noqa: E402
from crmsync.state.model import CrmRecord, ObjectType, Page  # noqa: E402

CRM = "salesforce"
PAGE = 2000
PER_ACCOUNT = 10  # what the generator is asked for; its account situations add about 1 more


def _resolved() -> dict[str, Resolved]:
    """sObject name -> its field map, every wanted field present (as a text field)."""
    maps = object_maps(Settings(renewal_date_field="Renewal_Date__c"))
    out = {}
    for obj, m in maps.items():
        infos = {n.lower(): FieldInfo(n, "string") for n in m.wanted()}
        out[SOBJECTS[obj]] = m.resolve(infos)
    return out


def _records(contacts: int, seed: int) -> Iterator[tuple[ObjectType, CrmRecord]]:
    from crmsync.sandbox.generate import iter_records

    resolved = _resolved()
    accounts = max(1, contacts // PER_ACCOUNT)
    for _crm, sobject, raw in iter_records(
        seed=seed, accounts=accounts, contacts_per_account=PER_ACCOUNT, crms=(CRM,)
    ):
        res = resolved.get(sobject)
        if res is None or res.map.object is ObjectType.TASK:
            continue
        record, _problems = res.to_record(raw)
        yield res.map.object, record


def build(path: Path, contacts: int, seed: int = 1) -> dict[str, Any]:
    """Load the generated org into a new mirror at `path`; return what was loaded."""
    from crmsync.sandbox.generate import DEFAULT_AS_OF

    db = open_db(path)
    t0 = time.monotonic()
    generation: dict[ObjectType, int] = {}
    pages: dict[ObjectType, list[CrmRecord]] = {}
    counts: dict[str, int] = {}

    def flush(obj: ObjectType, done: bool = False) -> None:
        batch = pages.pop(obj, [])
        if not batch and not done:
            return
        with db.conn:
            mirror.apply_page(
                db, CRM, Page(obj, batch, {"after": batch[-1].id if batch else ""}, done=done),
                generation=generation[obj], seen_at=DEFAULT_AS_OF,
            )  # fmt: skip

    for obj, record in _records(contacts, seed):
        if obj not in generation:
            with db.conn:
                generation[obj] = cursors.begin_full(db, CRM, obj)
        pages.setdefault(obj, []).append(record)
        counts[obj.value] = counts.get(obj.value, 0) + 1
        if len(pages[obj]) >= PAGE:
            flush(obj)
    for obj in list(generation):
        flush(obj)
        with db.conn:
            mirror.finish_full(db, CRM, obj, generation[obj], DEFAULT_AS_OF)
    db.conn.execute("ANALYZE")
    db.close()
    return {"records": counts, "build_s": round(time.monotonic() - t0, 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--contacts", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("path", type=Path)
    args = p.parse_args()
    print(build(args.path, args.contacts, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
