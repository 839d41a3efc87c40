"""A daemon cycle's evaluate + plan when little or nothing changed (issue 14).

    .venv/bin/python bench/daemon_cycle.py --contacts 100000
    .venv/bin/python bench/daemon_cycle.py --mirror PATH --changed 0.01
    .venv/bin/python bench/daemon_cycle.py --mirror PATH --enrichment changed   # [enrichment] on

On a copy of a generated mirror (bench/realistic_mirror.py), each in a fresh child
process (so the peak RSS is its own): a first run evaluates everything (and records
the due days), its writes land and come back as a pull would bring them (untimed); the
next cycle evaluates the accounts those writes touched; then a cycle over the
unchanged mirror; then one
after `--changed` of the live contacts took a new last activity through the pull's
path (state/mirror.py apply_page; not timed). Prints CPU seconds of evaluate + plan
(sync/evaluate.py `evaluate_and_plan`, incremental as sync/run.py calls it), how
many accounts it evaluated and the peak RSS. With `--enrichment`, [enrichment] is on
(a provider that finds nobody) and its step runs first, timed with the cycle
(`enrichment_cpu_s` is its share): `changed` as a run does it now, `all` looking at
every account as runs did before.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from evaluate_speed import _copy, _peak_rss_mb  # noqa: E402

CRM = "salesforce"
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _change(path: str, share: float, at: datetime) -> int:
    from crmsync.state import cursors, mirror
    from crmsync.state.db import open_db
    from crmsync.state.model import ObjectType, Page
    from crmsync.state.views import load_contact

    db = open_db(path)
    ids = [
        r[0]
        for r in db.conn.execute(
            "SELECT id FROM contacts WHERE crm = ? AND deleted_at IS NULL ORDER BY id", [CRM]
        )
    ]
    picked = random.Random(1).sample(ids, int(len(ids) * share))
    from crmsync.state.model import COLUMNS, CrmRecord

    records = []
    for cid in picked:
        c = load_contact(db, CRM, cid)
        assert c is not None
        values = {k: getattr(c, k, None) for k in COLUMNS[ObjectType.CONTACT]}
        values["last_activity_at"] = at - timedelta(days=random.Random(cid).randint(0, 400))
        records.append(
            CrmRecord(ObjectType.CONTACT, cid, at, values=values, raw={"Id": cid}, owned=c.owned)
        )
    with db.conn:
        gen = cursors.get(db, CRM, ObjectType.CONTACT).generation
        for i in range(0, len(records), 2000):
            mirror.apply_page(
                db,
                CRM,
                Page(ObjectType.CONTACT, records[i : i + 2000], None),
                generation=gen,
                seen_at=at,
            )
    db.close()
    return len(records)


def _land(db: object, plan: object, at: datetime) -> None:
    """The drain's part and the next pull's, untimed: crmsync's writes are recorded as
    written and come back in the mirror (owned values; created tasks)."""
    from crmsync.state import cursors, mirror, outbox
    from crmsync.state.db import transaction
    from crmsync.state.model import COLUMNS, OWNED_FIELDS, CrmRecord, ObjectType, Page, WriteKind
    from crmsync.state.views import load_account, load_contact

    pages: dict[ObjectType, list[CrmRecord]] = {}
    with transaction(db):  # type: ignore[arg-type]
        for i, w in enumerate(plan.items):  # type: ignore[attr-defined]
            if w.kind is WriteKind.CREATE_TASK:
                obj, tid = ObjectType.TASK, f"T{i:08d}"
                values = {k: w.payload.get(k) for k in COLUMNS[obj]}
                owned = {k: w.payload[k] for k in OWNED_FIELDS[obj] if k in w.payload}
            elif w.kind in (WriteKind.UPDATE_ACCOUNT, WriteKind.UPDATE_CONTACT):
                obj = (
                    ObjectType.ACCOUNT if w.kind is WriteKind.UPDATE_ACCOUNT else ObjectType.CONTACT
                )
                tid = w.target_id
                load = load_account if obj is ObjectType.ACCOUNT else load_contact
                row = load(db, CRM, tid)  # type: ignore[arg-type]
                values = {k: getattr(row, k, None) for k in COLUMNS[obj]}
                owned = {**(row.owned if row else {}), **w.payload}
            else:
                continue
            outbox.record_written(db, CRM, obj, tid, dict(w.payload), written_at=at)  # type: ignore[arg-type]
            pages.setdefault(obj, []).append(
                CrmRecord(obj, tid, at, values=values, raw={"Id": tid}, owned=owned)
            )
        for obj, records in pages.items():
            gen = cursors.get(db, CRM, obj).generation  # type: ignore[arg-type]
            for i in range(0, len(records), 2000):
                mirror.apply_page(db, CRM, Page(obj, records[i : i + 2000], None),  # type: ignore[arg-type]
                                  generation=gen, seen_at=at)  # fmt: skip


class _Nobody:
    """An outside people-data provider that finds nobody (no network)."""

    def candidates(self, domain: str, role: str) -> list[object]:
        return []


def child(path: str, minutes: int, full: bool, land: bool, enrichment: str = "off") -> None:
    from crmsync import rules
    from crmsync.state.db import open_db
    from crmsync.sync import enrichment as enrichment_mod
    from crmsync.sync import evaluate as evaluate_mod
    from crmsync.sync.writeback_settings import WritebackSettings

    db = open_db(path)
    now = NOW + timedelta(minutes=minutes)
    # The per-owner cap held no task: a first sync's creates all land at once (with the cap,
    # the accounts of held creates are evaluated again each run until created, as a full
    # evaluation would plan them again).
    settings, writeback = rules.RuleSettings(), WritebackSettings(max_new_tasks_per_owner=10**6)
    # --enrichment: [enrichment] on, its step before the rules as sync/run.py runs it; "all"
    # looks for needs in every account (as before issue 14's change), "changed" in the scope.
    people = enrichment_mod.EnrichmentSettings(provider="bench", max_calls_per_run=20)
    on = people if enrichment != "off" else None
    c0 = time.process_time()
    if on is not None:
        _, scope = evaluate_mod.run_scope(db, CRM, settings, writeback, as_of=now,
                                          incremental=not full, enrichment=on, queued=False)  # fmt: skip
        enrichment_mod.enrich(
            db, CRM, settings, people, as_of=now, now=now, provider=_Nobody(),
            accounts=scope.account_ids if enrichment == "changed" else None,
        )  # fmt: skip
    enrich_cpu = time.process_time() - c0
    ev, the_plan = evaluate_mod.evaluate_and_plan(
        db, CRM, settings, writeback, as_of=now, seen_at=now, incremental=not full,
        enrichment=on,
    )  # fmt: skip
    cpu = time.process_time() - c0
    print(
        json.dumps(
            {
                "scope": ev.scope.reason,
                "evaluated": ev.evaluated,
                "accounts": ev.accounts,
                "dirty": ev.scope.dirty,
                "due": ev.scope.due,
                "cpu_s": round(cpu, 2),
                **({"enrichment_cpu_s": round(enrich_cpu, 2)} if on is not None else {}),
                "planned": {k: v for k, v in the_plan.counts().items() if v},
                "peak_rss_mb": round(_peak_rss_mb()),
            }
        )
    )
    if land:
        _land(db, the_plan, now + timedelta(minutes=1))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--contacts", type=int, default=100_000)
    p.add_argument("--mirror", help="an existing mirror (skips the build)")
    p.add_argument("--changed", type=float, default=0.01, help="share of contacts changed")
    p.add_argument("--no-full-again", action="store_true", help="skip the last (full) run")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--minutes", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--full", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--land", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--enrichment", choices=("off", "all", "changed"), default="off",
                   help="[enrichment] on (a provider finding nobody): its step looks at "
                        "every account (all, as before) or at the run's scope (changed)")  # fmt: skip
    args = p.parse_args()
    if args.child:
        child(args.child, args.minutes, args.full, args.land, args.enrichment)
        return 0
    if args.mirror:
        path = Path(args.mirror)
    else:
        import realistic_mirror

        path = Path(tempfile.mkdtemp(prefix="crmsync-bench-")) / "mirror.db"
        print(realistic_mirror.build(path, args.contacts))
    work = Path(tempfile.mkdtemp(prefix="crmsync-bench-run-")) / "mirror.db"
    try:
        _copy(path, work)

        def run(label: str, minutes: int, full: bool = False, land: bool = False) -> None:
            cmd = [sys.executable, __file__, "--child", str(work), "--minutes", str(minutes)]
            cmd += (["--full"] if full else []) + (["--land"] if land else [])
            cmd += ["--enrichment", args.enrichment]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            print(f"{label}:", out.stdout.strip().splitlines()[-1])

        run("first (everything; its writes then land and come back)", 0, full=True, land=True)
        run("after the writes came back, 5 min later", 5)
        run("unchanged, 15 min later", 15)
        n = _change(str(work), args.changed, NOW + timedelta(minutes=20))
        run(f"{n} contacts changed, 30 min later", 30)
        if not args.no_full_again:
            run("full again (sync --full), 45 min later", 45, full=True)
    finally:
        shutil.rmtree(work.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
