"""open_db: a private file, WAL, busy timeout, migrations applied once and recorded."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from crmsync.state import migrations
from crmsync.state.db import open_db
from crmsync.state.errors import MirrorTooNew
from crmsync.state.model import COLUMNS


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_mirror_file_is_created_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o000)  # even a permissive umask must not widen it
    try:
        path = tmp_path / "mirror.db"
        db = open_db(path)
        db.execute("INSERT INTO cursors (crm, object, generation) VALUES ('x', 'y', 0)")
        for f in tmp_path.iterdir():
            if f.name.startswith("mirror.db") and not f.name.endswith(".lock"):
                assert _mode(f) == 0o600, f.name
        db.close()
    finally:
        os.umask(old)


def test_existing_wide_file_and_sidecars_are_tightened(tmp_path: Path) -> None:
    path = tmp_path / "mirror.db"
    open_db(path).close()
    os.chmod(path, 0o644)
    wal = tmp_path / "mirror.db-wal"
    wal.touch()
    os.chmod(wal, 0o666)
    open_db(path).close()
    assert _mode(path) == 0o600
    if wal.exists():
        assert _mode(wal) == 0o600


def test_wal_busy_timeout_and_no_foreign_keys(db) -> None:
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] >= 30000
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 0


def test_migrations_are_idempotent_and_version_recorded(db_path: Path) -> None:
    db = open_db(db_path)
    version = migrations.schema_version(db)
    assert version == len(migrations.known_names()) >= 1
    assert db.execute("PRAGMA user_version").fetchone()[0] == version
    db.close()
    db = open_db(db_path)  # second open applies nothing
    assert migrations.apply_migrations(db) == []
    rows = db.execute("SELECT name FROM _migrations").fetchall()
    assert [r[0] for r in rows] == migrations.known_names()
    db.close()


def test_every_canonical_column_has_a_home(db) -> None:
    """A new column in state.model.COLUMNS needs a new migration; this test says so."""
    for obj, columns in COLUMNS.items():
        stored = set(db[obj.value].columns_dict)
        missing = set(columns) - stored
        assert not missing, f"append a migration adding {sorted(missing)} to {obj.value}"
        assert {
            "crm",
            "id",
            "raw",
            "owned",
            "modified_at",
            "deleted_at",
            "merged_into",
            "synced_at",
        } <= stored
        assert db[obj.value].pks == ["crm", "id"]


def test_mirror_from_a_newer_crmsync_is_refused(db_path: Path) -> None:
    db = open_db(db_path)
    db.execute(
        "INSERT INTO _migrations (migration_set, name, applied_at) VALUES ('crmsync', 'm999_future', 'x')"
    )
    db.close()
    with pytest.raises(MirrorTooNew, match="newer crmsync"):
        open_db(db_path)


def test_in_memory_mirror_for_tools(tmp_path: Path) -> None:
    db = open_db(":memory:")
    assert "contacts" in db.table_names()


def test_missing_parent_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "data" / "crmsync.db"
    open_db(path).close()
    assert _mode(path) == 0o600


def test_rolled_back_keeps_nothing_of_what_the_block_wrote(tmp_path) -> None:
    from crmsync.state.db import open_db, rolled_back, transaction

    db = open_db(tmp_path / "m.db")
    try:
        with transaction(db):
            db.conn.execute("INSERT INTO runs (crm, mode, started_at) VALUES ('hubspot', 'full', 'x')")
        with rolled_back(db, write=True):
            with transaction(db):  # nested: a savepoint, not a commit
                db.conn.execute("INSERT INTO runs (crm, mode, started_at) VALUES ('hubspot', 'x', 'y')")
            db.conn.execute("DELETE FROM runs WHERE mode = 'full'")
            assert [r[0] for r in db.conn.execute("SELECT mode FROM runs")] == ["x"]  # sees itself
        assert [r[0] for r in db.conn.execute("SELECT mode FROM runs")] == ["full"]
        with pytest.raises(RuntimeError, match="committed"):
            with rolled_back(db):
                db.conn.execute("COMMIT")
    finally:
        db.close()
