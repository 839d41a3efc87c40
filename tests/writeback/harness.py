"""One crmsync run against a sandbox, step by step (pull, rules, plan, conflicts, outbox, drain).

The CRM-specific test modules give a connector; what landed is read back from
the sandbox's own records, never through crmsync.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crmsync import rules
from crmsync.state import conflicts as conflict_store
from crmsync.state.db import open_db
from crmsync.sync import conflicts as conflicts_mod
from crmsync.sync import evaluate as evaluate_mod
from crmsync.sync import pull as pull_mod
from crmsync.sync.drain import drain
from crmsync.sync.plan import enqueue, plan
from crmsync.sync.writeback_settings import WritebackSettings
from tests.clock import crm_now

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
SETTINGS = WritebackSettings(max_new_tasks_per_owner=1000)
WRITE_BATCH = {"salesforce": 200, "hubspot": 100}  # as sync/run.py drains


class Harness:
    """crmsync pointed at a sandbox: a connector, a mirror, and one run at a time."""

    def __init__(self, conn: Any, tmp_path: Path) -> None:
        self.conn = conn
        self.crm = conn.crm
        self.conn.ensure_fields(dry_run=False)
        self.db = open_db(tmp_path / "mirror.db")
        self.conflicts: list[conflict_store.ConflictRow] = []  # open after the last plan

    def plan(self) -> Any:
        pull_mod.pull(self.db, self.conn, full=False, started_at=crm_now())
        ev = evaluate_mod.evaluate(self.db, self.crm, rules.RuleSettings(), as_of=AS_OF,
                                   seen_at=crm_now())  # fmt: skip
        p = plan(self.db, self.crm, ev.results, SETTINGS, as_of=AS_OF)
        p, _ = conflicts_mod.track(self.db, self.crm, p, now=AS_OF)
        self.conflicts = conflict_store.open_conflicts(self.db, self.crm)
        return p

    def run(self) -> tuple[Any, Any]:
        p = self.plan()
        enqueue(self.db, p)
        return p, drain(self.db, self.conn, self.crm, batch_size=WRITE_BATCH[self.crm], max_attempts=5)
