"""One crmsync run against a sandbox, step by step (pull, verify, rules, plan, outbox, drain).

The CRM-specific test modules give a connector; what landed is read back from
the sandbox's own records, never through crmsync.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crmsync import rules
from crmsync.state.db import open_db
from crmsync.sync import evaluate as evaluate_mod
from crmsync.sync import pull as pull_mod
from crmsync.sync.drain import BATCH_SIZE, drain, verify_landed
from crmsync.sync.plan import WritebackSettings, enqueue, plan
from tests.clock import crm_now

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
SETTINGS = WritebackSettings(max_new_tasks_per_owner=1000)


class Harness:
    """crmsync pointed at a sandbox: a connector, a mirror, and one run at a time."""

    def __init__(self, conn: Any, tmp_path: Path) -> None:
        self.conn = conn
        self.crm = conn.crm
        self.conn.ensure_fields(dry_run=False)
        self.db = open_db(tmp_path / "mirror.db")
        self.drifts: list[Any] = []

    def plan(self) -> Any:
        pull_mod.pull(self.db, self.conn, full=False, started_at=crm_now())
        self.drifts = verify_landed(self.db, self.crm)
        ev = evaluate_mod.evaluate(self.db, self.crm, rules.RuleSettings(), as_of=AS_OF,
                                   seen_at=crm_now())  # fmt: skip
        return plan(self.db, self.crm, ev.results, SETTINGS, as_of=AS_OF)

    def run(self) -> tuple[Any, Any]:
        p = self.plan()
        enqueue(self.db, p)
        return p, drain(self.db, self.conn, self.crm, batch_size=BATCH_SIZE[self.crm], max_attempts=5)
