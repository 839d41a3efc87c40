"""Rules over a big mirror: evaluate (views -> rules -> flags stored) and plan, as a sync run does.

    .venv/bin/python bench/evaluate_speed.py --contacts 100000     # the generated org (realistic)
    .venv/bin/python bench/evaluate_speed.py --data worst --accounts 10000   # every contact flagged
    .venv/bin/python bench/evaluate_speed.py --mirror PATH          # reuse a mirror built before

Data. `realistic` (the default) loads the project's generated org
(sandbox/generate, seed 1, ~10 contacts per account, its proportions of
bouncing, stale, departed and single-threaded) through the Salesforce field map
(bench/realistic_mirror.py). `worst` is bench/state_views.py's synthetic mirror,
where every address is at a `.test` domain, so every contact is flagged as
bouncing and most as stale too: the most flags per contact, reported separately.

Then, in a fresh child process so the peak RSS is its alone, one run's rules
step with default settings: stream every account view, evaluate every rule,
store the flags, and plan the write-back into the outbox (sync/run.py's evaluate,
plan and queue: run 1 queues every write of a first sync, run 2 finds them queued);
`--step evaluate` stops after the flags (the results are then kept, as the
planner needed them, only by the code from before issue 14, which evaluated
everything before planning).
Prints wall and CPU seconds (CPU is the figure to compare on a shared machine),
accounts/s, flags by rule, planned writes and the peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(path: str, step: str) -> None:
    from crmsync import rules
    from crmsync.state.db import open_db
    from crmsync.sync import evaluate as evaluate_mod
    from crmsync.sync import plan as plan_mod
    from crmsync.sync.writeback_settings import WritebackSettings

    db = open_db(path)
    crm = "salesforce"
    now = datetime(2026, 11, 1, tzinfo=UTC)
    settings, writeback = rules.RuleSettings(), WritebackSettings()
    base = _peak_rss_mb()
    t0, c0 = time.monotonic(), time.process_time()
    streamed = hasattr(evaluate_mod, "evaluate_and_plan")  # else: all at once (before issue 14)
    the_plan = None
    if step == "evaluate" and streamed:  # views, rules, flags stored; no result kept
        ev = evaluate_mod.evaluate(
            db, crm, settings, as_of=now, seen_at=now, on_chunk=lambda _results, _views: None
        )
    elif step == "evaluate":  # every result kept for the planner, as sync/run.py did
        ev = evaluate_mod.evaluate(db, crm, settings, as_of=now, seen_at=now)
    elif streamed:  # one pass, chunk by chunk, each chunk's writes queued in the outbox
        ev, the_plan = evaluate_mod.evaluate_and_plan(
            db, crm, settings, writeback, as_of=now, seen_at=now, queue=True
        )
    else:
        ev = evaluate_mod.evaluate(db, crm, settings, as_of=now, seen_at=now)
        the_plan = plan_mod.plan(db, crm, ev.results, writeback, as_of=now)
    wall, cpu = time.monotonic() - t0, time.process_time() - c0
    contacts = db.conn.execute("SELECT count(*) FROM contacts WHERE deleted_at IS NULL").fetchone()[0]
    print(json.dumps({
        "accounts": ev.accounts, "contacts": contacts, "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1), "accounts_per_s": round(ev.accounts / wall),
        "flags": dict(ev.by_rule), "flag_changes": ev.changes.counts if ev.changes else None,
        "planned": {k: v for k, v in the_plan.counts().items() if v} if the_plan else None,
        "queued": the_plan.queued if the_plan else None,
        "rss_at_start_mb": round(base), "peak_rss_mb": round(_peak_rss_mb()),
    }))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", choices=("realistic", "worst"), default="realistic")
    p.add_argument("--contacts", type=int, default=100_000, help="realistic: contacts asked for")
    p.add_argument("--accounts", type=int, default=10_000, help="worst: accounts")
    p.add_argument("--per", type=int, default=10, help="worst: contacts per account")
    p.add_argument("--mirror", help="an existing mirror to evaluate (skips the build)")
    p.add_argument("--keep", help="build the mirror at this path (and keep it)")
    p.add_argument("--step", choices=("plan", "evaluate"), default="plan",
                   help="plan: evaluate and plan (a run); evaluate: views, rules, flags stored")
    p.add_argument("--runs", type=int, default=2, help="runs over the same copy (1: a first sync)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child, args.step)
        return 0
    if args.mirror:
        path = Path(args.mirror)
    else:
        path = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="crmsync-bench-")) / "mirror.db"
        t0 = time.monotonic()
        if args.data == "realistic":
            import realistic_mirror

            print(realistic_mirror.build(path, args.contacts))
        else:
            import state_views

            state_views.build(path, args.accounts, args.per)
        print(f"built mirror {path} in {time.monotonic() - t0:.0f} s")
    # Evaluate a copy: run 1 opens every flag (a first sync), run 2 finds them all again
    # (the steady state: nothing changed since).
    work = Path(tempfile.mkdtemp(prefix="crmsync-bench-run-")) / "mirror.db"
    try:
        _copy(path, work)
        for run in range(1, args.runs + 1):
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(work), "--step", args.step],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            print(f"run {run}:", out.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(work.parent, ignore_errors=True)
    return 0


def _copy(src: Path, dst: Path) -> None:
    """Copy a mirror, then bring it to this crmsync's schema in a process of its own (building
    a new migration's index over a big mirror is an upgrade's cost, not a run's memory)."""
    import sqlite3

    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    a.close()
    b.close()
    migrate = "import sys; from crmsync.state.db import open_db; open_db(sys.argv[1]).close()"
    subprocess.run([sys.executable, "-c", migrate, str(dst)], check=True)


if __name__ == "__main__":
    raise SystemExit(main())
