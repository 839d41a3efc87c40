"""Mirror snapshots and comparisons for the sync-level pull tests (FFP, O1, O6).

FFP ("the mirror equals a fresh full pull") compares what a rule could read:
per canonical table, the live rows (deleted_at IS NULL) keyed by id, with the
canonical columns of state.model.COLUMNS and `modified_at`. Left out on
purpose:

- bookkeeping that depends on the path a row took, not on the CRM: synced_at
  (full-pull generation), deleted_at's value, merged_into of tombstones,
  contact_history (a fresh pull has no history by design);
- tombstones themselves: a record deleted between runs is a tombstone in the
  incremental mirror and absent from a fresh one; both say "not live", and a
  row live on one side only is a difference;
- `raw` unless asked (`with_raw=True`): it is compared parsed, so key order
  is no difference.

`diff()` renders the differences readably (ids and column names first, values
truncated); `assert_same()` fails with it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from state.model import COLUMNS, ObjectType

# The canonical tables a pull fills (tasks are crmsync's own write-back objects).
TABLES: dict[str, ObjectType] = {
    "owners": ObjectType.OWNER,
    "accounts": ObjectType.ACCOUNT,
    "contacts": ObjectType.CONTACT,
    "opportunities": ObjectType.OPPORTUNITY,
    "contact_roles": ObjectType.CONTACT_ROLE,
}

Row = dict[str, Any]
Snapshot = dict[str, dict[str, Row]]


def snapshot(
    db_path: str | Path,
    crm: str,
    *,
    with_raw: bool = False,
    with_modified: bool = True,
    tables: Iterable[str] = TABLES,
) -> Snapshot:
    """Live canonical rows per table: {table: {id: {column: value}}}."""
    out: Snapshot = {}
    conn = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True)
    try:
        for table in tables:
            cols = list(COLUMNS[TABLES[table]])
            if with_modified:
                cols.append("modified_at")
            if with_raw:
                cols.append("raw")
            sql = (
                f"SELECT id, {', '.join(cols)} FROM {table} "
                "WHERE crm = ? AND deleted_at IS NULL ORDER BY id"
            )
            rows: dict[str, Row] = {}
            for rid, *values in conn.execute(sql, [crm]):
                row = dict(zip(cols, values, strict=True))
                if with_raw and row.get("raw") is not None:
                    row["raw"] = json.loads(row["raw"])
                rows[rid] = row
            out[table] = rows
    finally:
        conn.close()
    return out


def tombstones(db_path: str | Path, crm: str, table: str) -> dict[str, str | None]:
    """Soft-deleted ids of a table -> merged_into (None for a plain delete)."""
    conn = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True)
    try:
        return dict(
            conn.execute(
                f"SELECT id, merged_into FROM {table} WHERE crm = ? AND deleted_at IS NOT NULL",
                [crm],
            ).fetchall()
        )
    finally:
        conn.close()


def _short(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def diff(a: Snapshot, b: Snapshot, *, names: tuple[str, str] = ("A", "B"), limit: int = 20) -> str:
    """Readable differences between two snapshots; "" when equal."""
    lines: list[str] = []
    na, nb = names
    for table in sorted(set(a) | set(b)):
        ra, rb = a.get(table, {}), b.get(table, {})
        only_a = sorted(set(ra) - set(rb))
        only_b = sorted(set(rb) - set(ra))
        changed = sorted(i for i in set(ra) & set(rb) if ra[i] != rb[i])
        if not (only_a or only_b or changed):
            continue
        lines.append(
            f"{table}: {len(ra)} live in {na}, {len(rb)} live in {nb}; only in {na}: {len(only_a)}, "
            f"only in {nb}: {len(only_b)}, different: {len(changed)}"
        )
        for rid in only_a[:limit]:
            lines.append(f"  - {rid} live only in {na}")
        for rid in only_b[:limit]:
            lines.append(f"  + {rid} live only in {nb}")
        for rid in changed[:limit]:
            cols = sorted(c for c in set(ra[rid]) | set(rb[rid]) if ra[rid].get(c) != rb[rid].get(c))
            for c in cols:
                lines.append(
                    f"  ~ {rid}.{c}: {na}={_short(ra[rid].get(c))} {nb}={_short(rb[rid].get(c))}"
                )
    return "\n".join(lines)


def assert_same(a: Snapshot, b: Snapshot, *, names: tuple[str, str] = ("A", "B")) -> None:
    """Fail with a readable diff unless the snapshots are equal."""
    text = diff(a, b, names=names)
    assert not text, "mirrors differ:\n" + text


def counts(snap: Snapshot) -> dict[str, int]:
    return {table: len(rows) for table, rows in snap.items()}


def runs(db_path: str | Path) -> list[dict[str, Any]]:
    """The runs table, oldest first, counts parsed."""
    conn = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        out = []
        for row in conn.execute("SELECT * FROM runs ORDER BY id"):
            d = dict(row)
            for key in ("counts", "api_by_operation"):
                if isinstance(d.get(key), str):
                    d[key] = json.loads(d[key])
            out.append(d)
        return out
    finally:
        conn.close()


def cursor(db_path: str | Path, crm: str, obj: str) -> dict[str, Any] | None:
    conn = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT cursor FROM cursors WHERE crm = ? AND object = ?", [crm, obj]
        ).fetchone()
        return None if row is None or row[0] is None else json.loads(row[0])
    finally:
        conn.close()


def write_sync_toml(path: Path, sandbox: Any, mirror: str = "crmsync.db", extra: str = "") -> Path:
    """A working sync.toml for one sandbox: [mirror] + the sandbox's table (+ `extra` lines in it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    sandbox.write_config(path)
    text = path.read_text(encoding="utf-8").rstrip("\n")
    if extra:
        text += "\n" + extra.strip() + "\n"
    path.write_text(f'[mirror]\npath = "{mirror}"\n\n{text}\n', encoding="utf-8")
    return path

