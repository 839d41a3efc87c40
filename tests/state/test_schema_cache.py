"""The schema cache (issue 14): look-ups kept in the mirror between runs, aged by the run's clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlite_utils

from crmsync.state import schema_cache
from crmsync.state.db import open_db
from crmsync.state.schema_cache import Cached, MemorySchemaStore, MirrorSchemaStore

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


def test_an_entry_outlives_the_run_and_ages_by_the_next_runs_clock(
    db: sqlite_utils.Database, db_path: Path
) -> None:
    MirrorSchemaStore(db, "salesforce", now=T0).put(
        "describe:Contact", {"fields": [{"name": "Id"}]}, validator="Tue, 01 Dec 2026 09:00:00 GMT"
    )
    again = open_db(db_path)
    try:
        later = MirrorSchemaStore(again, "salesforce", now=T0 + timedelta(hours=23))
        entry = later.get("describe:Contact")
        assert entry == Cached({"fields": [{"name": "Id"}]}, T0, "Tue, 01 Dec 2026 09:00:00 GMT")
        assert entry.fresh(later.now, DAY)
        assert not entry.fresh(T0 + DAY, DAY)
        assert not entry.fresh(T0, timedelta(0)), "a max age of 0 keeps nothing"
        assert MirrorSchemaStore(again, "hubspot", now=T0).get("describe:Contact") is None
    finally:
        again.close()


def test_confirm_restarts_the_age_and_drop_forgets(db: sqlite_utils.Database) -> None:
    MirrorSchemaStore(db, "hubspot", now=T0).put("properties:contacts", [{"name": "email"}])
    MirrorSchemaStore(db, "hubspot", now=T0).put("owners", [{"id": "1"}])
    later = MirrorSchemaStore(db, "hubspot", now=T0 + DAY)
    later.confirm("properties:contacts")
    reread = MirrorSchemaStore(db, "hubspot", now=T0 + DAY)
    assert reread.get("properties:contacts") == Cached([{"name": "email"}], T0 + DAY, None)
    reread.drop("properties:contacts")
    assert reread.get("properties:contacts") is None
    assert MirrorSchemaStore(db, "hubspot", now=T0).get("properties:contacts") is None
    assert schema_cache.forget(db, "hubspot") == 1
    assert MirrorSchemaStore(db, "hubspot", now=T0).get("owners") is None


def test_the_memory_store_keeps_answers_for_one_connector() -> None:
    store = MemorySchemaStore(T0)
    store.put("describe:Account", {"fields": []})
    entry = store.get("describe:Account")
    assert entry is not None and entry.fresh(store.now, DAY)
    store.drop("describe:Account")
    assert store.get("describe:Account") is None
