"""Ingest of a full pull: the mirror's apply_page against a plain executemany upsert.

    .venv/bin/python bench/ingest_speed.py                  # 100,000 contacts
    .venv/bin/python bench/ingest_speed.py --contacts 20000 # a quick look

Records are the generator's Salesforce contacts (sandbox/generate: realistic
names, titles, dates and proportions), turned into CrmRecords by the connector's
own conversion (`Resolved.to_record`, the describe of the Salesforce sandbox's
Contact), so `raw` and the values are what a real pull hands the mirror.

Three figures, each in CPU seconds of this process (wall time is noisy on a shared
machine), each into a fresh mirror file made by `open_db` (same schema, same
indexes, WAL, synchronous=NORMAL):

- convert: the connector's to_record over every row (not part of ingest; shown
  so the pull's whole cost per row is visible);
- ingest: `mirror.apply_page` page by page, each with its cursor in a savepoint,
  committed every PAGES_PER_COMMIT pages as sync/pull.py does it, then `finish_full`;
- floor: the same rows, already encoded as tuples, upserted with one plain
  `INSERT ... ON CONFLICT DO UPDATE` executemany per page and one commit, into
  the same table with the same indexes. The target (docs/budgets.md) is ingest
  at >= 0.8x the floor's rows per CPU second.

A second pass applies the same pages again (an unchanged re-pull: nothing to
write), which is what most pages of a repeated full pull are.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crmsync.connectors.salesforce.client import Settings  # noqa: E402
from crmsync.connectors.salesforce.fields import field_infos, object_maps  # noqa: E402
from crmsync.sandbox.generate import generate  # noqa: E402
from crmsync.sandbox.salesforce.schema import describe_field, standard_objects  # noqa: E402
from crmsync.state import cursors, mirror  # noqa: E402
from crmsync.state.db import open_db, transaction  # noqa: E402
from crmsync.state.model import CrmRecord, ObjectType, Page  # noqa: E402
from crmsync.sync.pull import PAGES_PER_COMMIT  # noqa: E402

CRM = "salesforce"
PAGE = 2000


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def contact_rows(contacts: int) -> list[dict[str, Any]]:
    accounts = max(1, contacts // 10)
    rows: list[dict[str, Any]] = []
    seed = 1
    while len(rows) < contacts:
        data = generate(seed, accounts, crms=["salesforce"])
        rows.extend(data["salesforce"]["Contact"])
        seed += 1
    for i, row in enumerate(rows[:contacts]):  # unique ids across seeds
        row["Id"] = f"003{i:012d}AAA"
    return rows[:contacts]


def converter() -> Any:
    contact = next(o for o in standard_objects() if o.name == "Contact")
    infos = field_infos({"fields": [describe_field(f) for f in contact.fields]})
    return object_maps(Settings())[ObjectType.CONTACT].resolve(infos)


def pages(records: list[CrmRecord]) -> list[Page]:
    return [
        Page(ObjectType.CONTACT, records[i : i + PAGE], {"after": records[i : i + PAGE][-1].id},
             done=i + PAGE >= len(records))
        for i in range(0, len(records), PAGE)
    ]  # fmt: skip


def ingest(path: Path, batches: list[Page]) -> dict[str, float]:
    db = open_db(path)
    seen = batches[0].records[0].modified_at
    assert seen is not None
    out: dict[str, float] = {}
    for label in ("ingest", "ingest_unchanged"):
        cpu = _cpu()
        with transaction(db):
            generation = cursors.begin_full(db, CRM, ObjectType.CONTACT)
            mirror.defer_indexes(db, ObjectType.CONTACT)  # as sync/pull.py: empty table only
        for first in range(0, len(batches), PAGES_PER_COMMIT):  # as sync/pull.py commits
            with transaction(db):
                for page in batches[first : first + PAGES_PER_COMMIT]:
                    with transaction(db):  # the page's savepoint
                        mirror.apply_page(db, CRM, page, generation=generation, seen_at=seen)
                        cursors.save(db, CRM, ObjectType.CONTACT, page.cursor, mode="full")
        with db.conn:
            mirror.finish_full(db, CRM, ObjectType.CONTACT, generation, seen)
        out[f"{label}_cpu_s"] = round(_cpu() - cpu, 2)
    db.close()
    return out


def floor(path: Path, batches: list[Page]) -> float:
    """Plain executemany upsert of the same rows, encoded beforehand (not timed)."""
    db = open_db(path)
    columns = mirror.table_columns(ObjectType.CONTACT)
    encoded = [
        [mirror.encode_row(ObjectType.CONTACT, CRM, r, 1) for r in page.records]
        for page in batches
    ]
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns[2:])
    sql = (
        f"INSERT INTO contacts ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        f" ON CONFLICT (crm, id) DO UPDATE SET {updates}"
    )
    cpu = _cpu()
    with db.conn:
        for rows in encoded:
            db.conn.executemany(sql, rows)
    spent = _cpu() - cpu
    db.close()
    return spent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    args = parser.parse_args()
    rows = contact_rows(args.contacts)
    resolved = converter()
    cpu = _cpu()
    records = [resolved.to_record(row)[0] for row in rows]
    convert_s = _cpu() - cpu
    del rows
    batches = pages(records)
    with tempfile.TemporaryDirectory() as tmp:
        result = ingest(Path(tmp) / "ingest.db", batches)
        floor_s = floor(Path(tmp) / "floor.db", batches)
    n = len(records)
    ingest_s = result["ingest_cpu_s"]
    out = {
        "contacts": n,
        "convert_cpu_s": round(convert_s, 2),
        **result,
        "floor_cpu_s": round(floor_s, 2),
        "ingest_rows_per_cpu_s": round(n / ingest_s),
        "floor_rows_per_cpu_s": round(n / floor_s),
        "ingest_vs_floor": round(floor_s / ingest_s, 2),
        "peak_rss_mb": round(_rss_mb(), 1),
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
