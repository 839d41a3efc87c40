"""Rules over a big mirror: `sync.evaluate.evaluate` (views -> rules -> flags) at 100k accounts / 1M contacts.

    .venv/bin/python bench/evaluate_speed.py                  # 100,000 accounts x 10 contacts
    .venv/bin/python bench/evaluate_speed.py --accounts 5000  # a quick look
    .venv/bin/python bench/evaluate_speed.py --mirror PATH    # reuse a mirror built before

Builds the mirror with bench/state_views.py's loader (apply_page in pages of
2,000), then, in a fresh child process so the peak RSS is evaluation's alone,
runs the whole evaluate step with default rule settings: stream every account
view, evaluate every rule, store the flags. Prints wall and CPU seconds,
accounts/s, flags by rule, and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def child(path: str) -> None:
    import resource

    from crmsync import rules
    from crmsync.state.db import open_db
    from crmsync.sync.evaluate import evaluate

    db = open_db(path)
    t0, c0 = time.monotonic(), time.process_time()
    now = datetime(2026, 11, 1, tzinfo=UTC)
    ev = evaluate(db, "salesforce", rules.RuleSettings(), as_of=now, seen_at=now)
    wall, cpu = time.monotonic() - t0, time.process_time() - c0
    print(json.dumps({
        "accounts": ev.accounts, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
        "accounts_per_s": round(ev.accounts / wall), "flags": dict(ev.by_rule),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--accounts", type=int, default=100_000)
    p.add_argument("--per", type=int, default=10, help="contacts per account")
    p.add_argument("--mirror", help="an existing mirror to evaluate (skips the build)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child)
        return 0
    if args.mirror:
        path = Path(args.mirror)
    else:
        import state_views

        path = Path(tempfile.mkdtemp(prefix="crmsync-bench-")) / "mirror.db"
        t0 = time.monotonic()
        state_views.build(path, args.accounts, args.per)
        print(f"built mirror {path} in {time.monotonic() - t0:.0f} s")
    out = subprocess.run([sys.executable, __file__, "--child", str(path)], capture_output=True, text=True, check=True)
    print(out.stdout.strip().splitlines()[-1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
