from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from crmsync.state import mirror
from crmsync.state.db import open_db
from crmsync.state.model import CrmRecord
from tests.state.records import CRM, T0, page


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "mirror.db"


@pytest.fixture
def db(db_path: Path) -> Iterator[sqlite_utils.Database]:
    database = open_db(db_path)
    yield database
    database.close()


def load(
    db: sqlite_utils.Database, *records: CrmRecord, generation: int = 0, seen_at=T0, crm: str = CRM
) -> mirror.ApplyResult:
    """Apply records (grouped into one page per object) and commit."""
    total = mirror.ApplyResult()
    by_object: dict = {}
    for r in records:
        by_object.setdefault(r.object, []).append(r)
    for recs in by_object.values():
        with db.conn:
            total = total + mirror.apply_page(
                db, crm, page(*recs), generation=generation, seen_at=seen_at
            )
    return total
